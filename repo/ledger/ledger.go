// Package ledger reads the expected-backups ledger: a YAML file (usually a mounted ConfigMap)
// listing the PVCs known to have had a backup, so that a PVC it lists is never answered "fresh"
// when no backup is found (a wrong repository, prefix or identity would otherwise start it
// empty). The file can be committed to the GitOps repository and carried to the next cluster:
// the memory that "this PVC once had data" then travels with the apps.
//
// Format (strict: an unknown key, a malformed entry or a duplicate key is an error):
//
//	# backup-oracle expected backups
//	pvcs:
//	  - shop/postgres
//	  - monitoring/prometheus-db-0
package ledger

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"

	"gopkg.in/yaml.v3"

	"github.com/backup-oracle/backup-oracle/repo"
)

// maxSize bounds the file: 100,000 entries of the longest names fit.
const maxSize = 64 << 20

// File is a ledger file, re-read by Reload. Its zero value is not usable: use Open. Safe for
// concurrent use.
type File struct {
	path  string
	state atomic.Pointer[state]
}

type state struct {
	pvcs map[repo.PVC]bool
	err  error
}

// Open returns the ledger at path, read once. A file that cannot be read or parsed is kept as an
// error: every Expected call returns it until a Reload succeeds (never an empty ledger).
func Open(path string) *File {
	f := &File{path: path}
	_ = f.Reload() // kept in the state: Expected and Err report it

	return f
}

// Reload reads the file again, and returns the error it holds now (nil when it parsed).
func (f *File) Reload() error {
	listed, err := read(f.path)
	if err != nil {
		err = fmt.Errorf("expected-backups ledger %s: %w", f.path, err)
	}

	pvcs := make(map[repo.PVC]bool, len(listed))
	for p := range listed {
		pvcs[key(p)] = true
	}

	f.state.Store(&state{pvcs: pvcs, err: err})

	return err
}

// Expected implements repo.Ledger. Names are compared without their dots: the Kopia mover
// drops them, so "my.app.data" and "myappdata" share one identity, and an inventory exported
// from a Kopia repository lists the name without dots.
func (f *File) Expected(pvc repo.PVC) (bool, error) {
	st := f.state.Load()
	if st.err != nil {
		return false, st.err
	}

	return st.pvcs[key(pvc)], nil
}

func key(p repo.PVC) repo.PVC {
	return repo.PVC{Namespace: p.Namespace, Name: strings.ReplaceAll(p.Name, ".", "")}
}

// Len is the number of PVCs listed (0 when the file cannot be used).
func (f *File) Len() int { return len(f.state.Load().pvcs) }

// Err is the file's error now, nil when it parsed.
func (f *File) Err() error { return f.state.Load().err }

func read(path string) (map[repo.PVC]bool, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()

	raw, err := io.ReadAll(io.LimitReader(fh, maxSize+1))
	if err != nil {
		return nil, err
	}

	if len(raw) > maxSize {
		return nil, fmt.Errorf("larger than %d bytes", maxSize)
	}

	return Parse(raw)
}

// Parse parses a ledger. Every bad entry is reported at once.
func Parse(raw []byte) (map[repo.PVC]bool, error) {
	var doc struct {
		PVCs *[]string `yaml:"pvcs"`
	}

	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)

	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New(`empty file: want "pvcs: [<namespace>/<pvc>, ...]" (an empty list is "pvcs: []")`)
		}

		return nil, err
	}

	if doc.PVCs == nil {
		return nil, errors.New(`no "pvcs" key: want "pvcs: [<namespace>/<pvc>, ...]"`)
	}

	pvcs := make(map[repo.PVC]bool, len(*doc.PVCs))

	var errs []error

	for i, entry := range *doc.PVCs {
		ns, name, ok := strings.Cut(entry, "/")
		p := repo.PVC{Namespace: ns, Name: name}

		switch err := p.Validate(); {
		case !ok:
			errs = append(errs, fmt.Errorf("entry %d %q: want <namespace>/<pvc>", i+1, entry))
		case err != nil:
			errs = append(errs, fmt.Errorf("entry %d %q: %w", i+1, entry, err))
		default:
			pvcs[p] = true
		}
	}

	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	return pvcs, nil
}
