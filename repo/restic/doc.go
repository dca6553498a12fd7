// Package restic reads restic repositories natively, from S3 (aws-sdk-go-v2) or a local or NFS
// directory, and builds the index backup-oracle answers from. restic has no importable Go API: the
// format is implemented from restic's doc/design.rst (key files with scrypt, AES-256-CTR with
// Poly1305-AES, repository versions 1 and 2 with zstd-compressed unpacked files).
//
// # Layouts
//
// Per PVC (VolSync's restic mover): one repository at Options.RepositoryTemplate, by default
// "{prefix}/{namespace}/{pvc}". Shared: one repository whose snapshots carry the tag
// "<namespace>/<pvc>"; tags are encrypted, so this layout needs the password.
//
// # Cost of an index
//
// Load lists, with the "/" delimiter, each level of the template that holds a placeholder, then
// the snapshots/ directory of each repository found: about one request per namespace plus one per
// PVC. data/ is never listed and, without a password, nothing is downloaded. Requests run at most
// Options.ListConcurrency at a time; each attempt is bounded by the S3 request timeout and only
// transient failures (connection errors, timeouts, 5xx, throttling) are retried. Any failed
// listing fails Load with an error wrapping repo.ErrUnavailable, so the cache keeps its previous
// index rather than taking an incomplete listing for "no snapshots".
//
// # What counts as a backup
//
// At least one snapshot. A repository holding config and keys/ but nothing under snapshots/
// (VolSync initialises one before restoring) and an absent repository both yield an empty
// Finding: the listing was complete, so the answer is authoritative.
//
// Without a password, each object under snapshots/ with a storage-id name is a snapshot, dated by
// the object's modification time. With a password, a snapshot counts only once its file hashes to
// its name, decrypts and authenticates with the repository's master key and decodes; it then
// reports its time, host, paths and tags. A snapshot that fails makes its PVC's Find return an
// error wrapping repo.ErrUnverifiable, never "no snapshots".
//
// # Key derivation and readiness
//
// Opening a repository means running scrypt on the password (restic calibrates it to ~0.5s and
// up to 60 MiB), once per repository since every repository has its own key. For a fleet of
// repositories that is minutes of CPU, so it must not stand between the service and its first
// index. The choice made here:
//
//   - Load never blocks on verification for longer than Options.VerifyWait (default 10s). It
//     starts a background verification for each repository with snapshots it has not verified
//     yet, waits at most VerifyWait, then returns a complete index in which a repository still
//     being verified answers an error wrapping repo.ErrUnverifiable ("N of M snapshots not
//     verified yet"), i.e. "unknown", and every other PVC answers normally. The service becomes
//     ready with the first index; the unknown answers turn into restore as the background work
//     completes and the next refresh picks the results up.
//   - Verification runs in goroutines owned by the Repo (cancelled by Close), at most
//     Options.VerifyConcurrency scrypt derivations at a time, each repository bounded by
//     Options.VerifyTimeout. It is deliberately not tied to Load's context: a refresh timeout
//     would otherwise throw away derivations that took seconds of CPU.
//   - Master keys are cached (bounded LRU, Options.KeyCacheSize) and reused while they open the
//     repository's config with the same repository id; a re-initialised repository is detected
//     and its key derived again. Decrypted snapshots are remembered by id across refreshes, so a
//     refresh downloads only new snapshots (plus the small config). A password that opens none
//     of a repository's key files is not retried until its key files change.
//
// Deriving on demand inside Find was rejected: Find sits on the admission path, whose deadline
// is a few seconds, and the index it answers from must stay immutable.
package restic
