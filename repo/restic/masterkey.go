package restic

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// masterKey returns dir's master key and the repository's id (its config's): the key from the
// cache when it still opens the repository's config (same repository id), else derived from the
// password with scrypt under the derive semaphore. The config is always read and authenticated,
// so a re-initialised repository gets a new key. A missing config wraps ErrObjectNotFound.
func (v *verifier) masterKey(ctx context.Context, dir string) (*key, string, error) {
	cfgName := dir + "config"

	cfgBlob, err := v.store.Get(ctx, cfgName)
	if err != nil {
		return nil, "", fmt.Errorf("restic: get %q: %w", v.store.Location(cfgName), err)
	}

	if ck, ok := v.keys.Get(dir); ok {
		if cfg, err := v.openConfig(ck.key, cfgBlob); err == nil && cfg.ID == ck.configID {
			return ck.key, ck.configID, nil
		}

		v.keys.Remove(dir)
	}

	keysDir := dir + "keys/"

	l, err := v.store.List(ctx, keysDir)
	if err != nil {
		return nil, "", fmt.Errorf("restic: list %q: %w", v.store.Location(keysDir), err)
	}

	names := make([]string, 0, len(l.Objects))
	for _, o := range l.Objects {
		names = append(names, o.Key)
	}

	sort.Strings(names)

	if len(names) == 0 {
		return nil, "", fmt.Errorf("restic: list %q: no key file", v.store.Location(keysDir))
	}

	if len(names) > maxKeyFiles {
		names = names[:maxKeyFiles]
	}

	fingerprint := strings.Join(names, ",")

	v.mu.Lock()
	denied := v.denied[dir] == fingerprint
	v.mu.Unlock()

	if denied {
		_, from := v.passwordFor(dir)

		return nil, "", fmt.Errorf("%w of %s (%d key files, unchanged since the last attempt): the repository was written with another password; "+
			"give this PVC's own in RESTIC_PASSWORDS_DIR (a file <namespace>.<pvc>)", errWrongPassword, from, len(names))
	}

	k, cfg, err := v.deriveKey(ctx, dir, cfgBlob, names)
	if err != nil {
		if errors.Is(err, errWrongPassword) {
			v.mu.Lock()
			v.denied[dir] = fingerprint
			v.mu.Unlock()

			// Once per set of key files: the next attempts are refused above without a log line.
			v.logger.Warn("restic: the password does not open this repository's keys: its snapshots cannot be verified and its PVC is answered unknown "+
				"until the password or the key files change (a per-PVC password goes in RESTIC_PASSWORDS_DIR as <namespace>.<pvc>)",
				"repository", v.store.Location(strings.TrimSuffix(dir, "/")), "err", err)
		}

		return nil, "", err
	}

	v.keys.Add(dir, cachedKey{key: k, configID: cfg.ID})

	return k, cfg.ID, nil
}

// deriveKey tries each key file until one opens with the password and its master key opens the
// config. Only wrong passwords (MAC mismatch) are skipped silently; other failures are reported.
func (v *verifier) deriveKey(ctx context.Context, dir string, cfgBlob []byte, names []string) (*key, repoConfig, error) {
	if err := v.derive.acquire(ctx, dir); err != nil {
		return nil, repoConfig{}, fmt.Errorf("restic: wait for key derivation: %w", err)
	}
	defer v.derive.release()

	var errs []error

	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return nil, repoConfig{}, err
		}

		blob, err := v.store.Get(ctx, name)
		if err != nil {
			errs = append(errs, fmt.Errorf("restic: get %q: %w", v.store.Location(name), err))
			continue
		}

		kf, err := parseKeyFile(blob)
		if err != nil {
			errs = append(errs, fmt.Errorf("restic: key %q: %w", v.store.Location(name), err))
			continue
		}

		pw, _ := v.passwordFor(dir)

		k, err := openKeyFile(kf, []byte(pw.Reveal()))
		if errors.Is(err, errUnauthenticated) {
			continue
		}

		if err != nil {
			errs = append(errs, fmt.Errorf("restic: key %q: %w", v.store.Location(name), err))
			continue
		}

		cfg, err := v.openConfig(k, cfgBlob)
		if err != nil {
			return nil, repoConfig{}, fmt.Errorf("restic: config: %w", err)
		}

		return k, cfg, nil
	}

	if len(errs) > 0 {
		return nil, repoConfig{}, errors.Join(errs...)
	}

	_, from := v.passwordFor(dir)

	return nil, repoConfig{}, fmt.Errorf("%w of %s (%d key files tried): the repository was written with another password; "+
		"give this PVC's own in RESTIC_PASSWORDS_DIR (a file <namespace>.<pvc>)", errWrongPassword, from, len(names))
}

func (v *verifier) openConfig(k *key, blob []byte) (repoConfig, error) {
	doc, err := v.dec.openFile(k, "", blob)
	if err != nil {
		return repoConfig{}, fmt.Errorf("decrypt config: %w", err)
	}

	return parseConfig(doc)
}
