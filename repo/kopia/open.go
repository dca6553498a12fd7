package kopia

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	kopiarepo "github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/blob"
	"github.com/kopia/kopia/repo/content"
)

// ConnectOptions say how OpenDirect connects.
type ConnectOptions struct {
	// ConfigFile is where the connection's kopia config file is written (private, writable).
	ConfigFile string
	// Cache holds kopia's local caches; CacheDirectory should be absolute.
	Cache content.CachingOptions
	// Client identifies the client; ReadOnly wraps the storage so nothing can be written.
	// FormatBlobCacheDuration is kopia's: zero means 15 minutes, negative means "read the format
	// blob from the storage on open, then cache it for 15 minutes".
	Client kopiarepo.ClientOptions
	// OnFatalError is called when kopia meets an error it considers fatal (a repository format
	// this kopia version cannot read). It must not be nil: kopia's default calls os.Exit(1).
	OnFatalError func(error)
}

// OpenDirect connects to the repository in st and opens it, without kopia's repo.Connect:
// Connect verifies the new connection by opening the repository with default options, which
// wait in a loop for an upgrade lock to be released and call os.Exit on a fatal error. Here the
// config file is written directly and the repository opened once, with DoNotWaitForUpgrade
// (an upgrade lock fails the open at once with an error wrapping
// kopiarepo.ErrRepositoryUnavailableDueToUpgradeInProgress) and the caller's OnFatalError.
// st is not kept: kopia re-creates the storage from its connection info.
func OpenDirect(ctx context.Context, st blob.Storage, password string, o ConnectOptions) (kopiarepo.DirectRepository, error) {
	if o.OnFatalError == nil {
		return nil, errors.New("kopia: open: OnFatalError is required (kopia's default exits the process)")
	}

	if err := writeConfig(o.ConfigFile, st, o.Cache, o.Client); err != nil {
		return nil, err
	}

	rep, err := kopiarepo.Open(ctx, o.ConfigFile, password, &kopiarepo.Options{
		DisableRepositoryLog: true,
		DoNotWaitForUpgrade:  true,
		OnFatalError:         o.OnFatalError,
	})
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}

	dr, ok := rep.(kopiarepo.DirectRepository)
	if !ok {
		_ = rep.Close(ctx)
		return nil, fmt.Errorf("open: %T is not a direct repository", rep)
	}

	return dr, nil
}

// writeConfig writes what kopiarepo.Connect would write: the storage's connection info (which may
// hold S3 keys: the file is 0600 in a private directory), the caching options and the client
// options.
func writeConfig(path string, st blob.Storage, caching content.CachingOptions, client kopiarepo.ClientOptions) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create config directory: %w", err)
	}

	ci := st.ConnectionInfo()
	lc := kopiarepo.LocalConfig{Storage: &ci, Caching: &caching, ClientOptions: client}

	b, err := json.MarshalIndent(lc, "", "  ")
	if err != nil {
		return fmt.Errorf("encode config file: %w", err)
	}

	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write config file: %w", err)
	}

	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write config file: %w", err)
	}

	return nil
}

// readOnlyClient is the identity the oracle connects with. The format blob is read from the
// storage at every open (a negative duration skips kopia's on-disk copy, which may be stale after
// a restart: an upgrade lock placed or released meanwhile); between opens Repo watches it itself.
func readOnlyClient() kopiarepo.ClientOptions {
	return kopiarepo.ClientOptions{
		ReadOnly: true, Hostname: "backup-oracle", Username: "backup-oracle",
		Description: "backup-oracle (read-only)", FormatBlobCacheDuration: -time.Nanosecond,
	}
}
