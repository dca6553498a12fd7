// Package e2e runs the shipped Kyverno policies end to end on this machine: etcd, kube-apiserver
// and Kyverno's admission, background and cleanup controllers as plain processes on 127.0.0.1,
// the real backup-oracle on a Kopia repository written by the real kopia CLI, and PVCs created
// through the API server. The tests carry the build tag e2e; run them with `make e2e`, which
// builds every tool they need and passes it as <NAME>_BIN.
package e2e
