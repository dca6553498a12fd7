# syntax=docker/dockerfile:1
# backup-oracle: a static binary on distroless, running as the VolSync mover's UID/GID 568.
ARG GO_VERSION=1.26
FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY cmd ./cmd
COPY server ./server
COPY cache ./cache
COPY repo ./repo
COPY openapi.go openapi.yaml ./
ARG VERSION=dev
ARG REVISION=unknown
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.revision=${REVISION}" \
      -o /out/backup-oracle ./cmd/backup-oracle

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/backup-oracle /backup-oracle
USER 568:568
EXPOSE 8080
# Kopia's config and cache go to STATE_DIR: mount an emptyDir there (the root filesystem is
# read-only in the chart).
ENV STATE_DIR=/state
ENTRYPOINT ["/backup-oracle"]
