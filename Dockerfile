# syntax=docker/dockerfile:1
# backup-oracle: a static binary on distroless, running as the VolSync mover's UID/GID 568.
# `make image` builds the same image index (linux/amd64, linux/arm64) without Docker (crane);
# TestImageMatchesDockerfile holds the two to the same build flags, user, entrypoint, environment,
# port, labels and /state.
#
# Base images are pinned by digest. The digests were taken from public Dockerfiles found with a
# code search (golang:1.26-bookworm and gcr.io/distroless/static-debian12:nonroot as of 2026);
# the build machine cannot reach a registry to check them: refresh them with
# `crane digest golang:1.26-bookworm` and `crane digest gcr.io/distroless/static-debian12:nonroot`.
FROM --platform=$BUILDPLATFORM golang:1.26-bookworm@sha256:a688600ca24f8a4d3ca77f95b0dd40704a9fc787c826660eb7ba0b641b8b175d AS build
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
# docker buildx build --platform linux/amd64,linux/arm64: cross-compiled on the build platform
# (BuildKit sets TARGETOS and TARGETARCH; unset, go builds for the build machine).
ARG TARGETOS
ARG TARGETARCH
RUN GOOS=${TARGETOS} GOARCH=${TARGETARCH} CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.revision=${REVISION}" \
      -o /out/backup-oracle ./cmd/backup-oracle \
 && mkdir -m 0700 /out/state

FROM gcr.io/distroless/static-debian12:nonroot@sha256:afa5c872c891853ca7fcf1f12c3edb23f7eeef36189728842dd51042ff57f7ab
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title=backup-oracle \
      org.opencontainers.image.version=${VERSION} \
      org.opencontainers.image.revision=${REVISION} \
      org.opencontainers.image.source=https://github.com/backup-oracle/backup-oracle \
      org.opencontainers.image.licenses=Apache-2.0
COPY --from=build /out/backup-oracle /backup-oracle
# Kopia's config and cache go to STATE_DIR: in Kubernetes an emptyDir is mounted there (the root
# filesystem is read-only in the chart); without a mount, this directory owned by 568 serves.
COPY --from=build --chown=568:568 /out/state /state
USER 568:568
EXPOSE 8080
ENV STATE_DIR=/state
WORKDIR /
ENTRYPOINT ["/backup-oracle"]
