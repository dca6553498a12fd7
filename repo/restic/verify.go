package restic

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/backup-oracle/backup-oracle/repo"
)

// maxKeyFiles is how many key files are tried per repository, as restic does.
const maxKeyFiles = 20

// errWrongPassword: no key file of the repository opens with the configured password. It is
// repo.ErrWrongPassword (errors.Is) with restic's words.
var errWrongPassword error = wrongPassword{}

type wrongPassword struct{}

func (wrongPassword) Error() string { return "no key file opens with the password" }

// Is makes errors.Is(err, repo.ErrWrongPassword) true.
func (wrongPassword) Is(target error) bool { return target == repo.ErrWrongPassword }

// cachedKey is a repository's master key and the config id it was checked against.
type cachedKey struct {
	key      *key
	configID string
}

// verifier decrypts and authenticates snapshots in the background and remembers the results
// across index refreshes: a snapshot id is decrypted once; a repository's master key is derived
// once (bounded LRU) and re-derived only when the repository's config changes; a password that
// opens no key file is not tried again until the set of key files changes. Safe for concurrent
// use.
type verifier struct {
	store    Storage
	dec      *decoder
	password repo.Secret
	// passwords are the per-PVC ones (Options.Passwords), by repository directory.
	passwords map[string]pvcPassword
	logger    *slog.Logger
	keys      *lru.Cache[string, cachedKey]
	jobs      *queue // bounds concurrent repository verifications (I/O)
	derive    *queue // bounds concurrent scrypt derivations (CPU, memory)
	timeout   time.Duration
	base      context.Context // cancelled by Repo.Close

	mu       sync.Mutex
	snaps    map[string]map[string]repo.Snapshot // dir → id → verified snapshot
	failed   map[string]error                    // dir → error of its last verification
	denied   map[string]string                   // dir → key files no key opened with the password
	inflight map[string]chan struct{}            // dir → closed when its verification ends
}

// pvcPassword is a PVC's own repository password and where it came from.
type pvcPassword struct {
	secret repo.Secret
	pvc    repo.PVC
}

func newVerifier(base context.Context, store Storage, dec *decoder, o Options, l layout) (*verifier, error) {
	keys, err := lru.New[string, cachedKey](o.KeyCacheSize)
	if err != nil {
		return nil, fmt.Errorf("restic: key cache: %w", err)
	}

	passwords := make(map[string]pvcPassword, len(o.Passwords))
	for pvc, pw := range o.Passwords {
		passwords[l.dir(pvc)] = pvcPassword{secret: pw, pvc: pvc}
	}

	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	return &verifier{
		store: store, dec: dec, password: o.Password, passwords: passwords, logger: logger,
		keys: keys, timeout: o.VerifyTimeout, base: base,
		jobs: newQueue(o.ListConcurrency), derive: newQueue(o.VerifyConcurrency),
		snaps: map[string]map[string]repo.Snapshot{}, failed: map[string]error{}, denied: map[string]string{},
		inflight: map[string]chan struct{}{},
	}, nil
}

// hasPassword reports whether a password is known for the repository at dir.
func (v *verifier) hasPassword(dir string) bool {
	_, own := v.passwords[dir]

	return own || v.password != ""
}

// passwordFor returns the password of the repository at dir and where it comes from, for
// messages: its PVC's own file of RESTIC_PASSWORDS_DIR, or RESTIC_PASSWORD.
func (v *verifier) passwordFor(dir string) (repo.Secret, string) {
	if p, ok := v.passwords[dir]; ok {
		return p.secret, fmt.Sprintf("the file %s.%s of RESTIC_PASSWORDS_DIR", p.pvc.Namespace, p.pvc.Name)
	}

	return v.password, "RESTIC_PASSWORD"
}

// refresh forgets repositories and snapshots no longer listed, starts a background verification
// for each repository holding unverified snapshots (unless one is running) and returns the
// channels that close when the verifications concerning repos end.
func (v *verifier) refresh(repos map[string][]Object) []chan struct{} {
	v.mu.Lock()
	defer v.mu.Unlock()

	for dir, snaps := range v.snaps {
		if _, ok := repos[dir]; !ok {
			delete(v.snaps, dir)
			continue
		}

		listed := make(map[string]bool, len(repos[dir]))
		for _, o := range repos[dir] {
			listed[snapshotID(o.Key)] = true
		}

		for id := range snaps {
			if !listed[id] {
				delete(snaps, id)
			}
		}
	}

	for dir := range v.failed {
		if _, ok := repos[dir]; !ok {
			delete(v.failed, dir)
		}
	}

	for dir := range v.denied {
		if _, ok := repos[dir]; !ok {
			delete(v.denied, dir)
		}
	}

	var dones []chan struct{}

	for dir, objs := range repos {
		if done, ok := v.inflight[dir]; ok {
			dones = append(dones, done)
			continue
		}

		var todo []string

		for _, o := range objs {
			if id := snapshotID(o.Key); v.snaps[dir][id].ID == "" {
				todo = append(todo, id)
			}
		}

		if len(todo) == 0 {
			continue
		}

		done := make(chan struct{})
		v.inflight[dir] = done
		dones = append(dones, done)

		go v.run(dir, todo, done)
	}

	return dones
}

// view reports what is known of dir's listed snapshots: the verified ones (oldest first), how
// many are not verified yet, and the error of the last verification (nil when it succeeded).
func (v *verifier) view(dir string, objs []Object) (verified []repo.Snapshot, pending int, failed error) {
	v.mu.Lock()
	defer v.mu.Unlock()

	for _, o := range objs {
		if s, ok := v.snaps[dir][snapshotID(o.Key)]; ok {
			verified = append(verified, s)
		} else {
			pending++
		}
	}

	repo.SortSnapshots(verified)

	return verified, pending, v.failed[dir]
}

// urgent makes dir's verification the next one (a lookup asks about its PVC): it starts one for
// dir's listed snapshots not verified yet, unless one is queued or running, and puts it before
// every other in both queues. It returns a channel closed when that verification ends.
func (v *verifier) urgent(dir string, objs []Object) <-chan struct{} {
	v.jobs.hurry(dir)
	v.derive.hurry(dir)

	v.mu.Lock()
	defer v.mu.Unlock()

	if done, ok := v.inflight[dir]; ok {
		return done
	}

	var todo []string

	for _, o := range objs {
		if id := snapshotID(o.Key); v.snaps[dir][id].ID == "" {
			todo = append(todo, id)
		}
	}

	done := make(chan struct{})

	if len(todo) == 0 {
		v.jobs.settle(dir)
		v.derive.settle(dir)
		close(done)

		return done
	}

	v.inflight[dir] = done

	go v.run(dir, todo, done)

	return done
}

func (v *verifier) run(dir string, ids []string, done chan struct{}) {
	defer v.derive.settle(dir)
	defer v.jobs.settle(dir)

	// Queueing is not bounded by VerifyTimeout: a large fleet waits its turn for minutes on first
	// start, which must not turn into failures. Only Close ends the wait.
	err := v.jobs.acquire(v.base, dir)
	if err == nil {
		ctx, cancel := context.WithTimeout(v.base, v.timeout)
		err = v.verify(ctx, dir, ids)

		cancel()
		v.jobs.release()
	}

	if err != nil {
		err = fmt.Errorf("restic: verify repository %q: %w: %w", v.store.Location(strings.TrimSuffix(dir, "/")), repo.ErrUnverifiable, err)
	}

	v.mu.Lock()
	if err != nil {
		v.failed[dir] = err
	} else {
		delete(v.failed, dir)
	}

	delete(v.inflight, dir)
	v.mu.Unlock()

	close(done)
}

// verify decrypts each of ids, recording the ones that verify; it returns every failure joined.
func (v *verifier) verify(ctx context.Context, dir string, ids []string) error {
	k, _, err := v.masterKey(ctx, dir)
	if err != nil {
		return err
	}

	var errs []error

	for _, id := range ids {
		s, err := v.snapshot(ctx, k, dir, id)
		if err != nil {
			errs = append(errs, err)
			continue
		}

		v.mu.Lock()
		if v.snaps[dir] == nil {
			v.snaps[dir] = map[string]repo.Snapshot{}
		}

		v.snaps[dir][id] = s
		v.mu.Unlock()
	}

	return errors.Join(errs...)
}

func (v *verifier) snapshot(ctx context.Context, k *key, dir, id string) (repo.Snapshot, error) {
	name := dir + "snapshots/" + id

	blob, err := v.store.Get(ctx, name)
	if err != nil {
		return repo.Snapshot{}, fmt.Errorf("restic: get %q: %w", v.store.Location(name), err)
	}

	doc, err := v.dec.openFile(k, id, blob)
	if err != nil {
		return repo.Snapshot{}, fmt.Errorf("restic: decrypt snapshot %s: %w", id, err)
	}

	s, err := parseSnapshot(id, doc)
	if err != nil {
		return repo.Snapshot{}, fmt.Errorf("restic: snapshot %s: %w", id, err)
	}

	return s, nil
}

func snapshotID(key string) string { return key[strings.LastIndexByte(key, '/')+1:] }
