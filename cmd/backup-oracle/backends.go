package main

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/backup-oracle/backup-oracle/repo"
	"github.com/backup-oracle/backup-oracle/repo/all"
)

// registry is the one list of backend kinds (package repo/all); nothing in cmd names a kind.
func registry() repo.Registry { return all.Kinds() }

// loadBackendsFile reads the backends file: strict YAML, unknown fields rejected. Each entry is
// a name, a type (a registry kind) and that kind's own sections (e.g. kopia:, s3:, restic:).
func loadBackendsFile(path string, kinds repo.Registry) ([]backendSpec, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("backends file: %w", err)
	}

	var f struct {
		Backends []yaml.Node `yaml:"backends"`
	}

	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)

	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("backends file %s: %w", path, err)
	}

	if len(f.Backends) == 0 {
		return nil, fmt.Errorf("backends file %s: no backends listed", path)
	}

	var (
		specs []backendSpec
		errs  []error
	)

	for i, n := range f.Backends {
		s, err := decodeBackend(&n, kinds)
		if err != nil {
			errs = append(errs, fmt.Errorf("backends file %s: backend %d (line %d): %w", path, i+1, n.Line, err))
			continue
		}

		specs = append(specs, s)
	}

	return specs, errors.Join(errs...)
}

// decodeBackend decodes one entry: name and type here, the rest strictly into the kind's
// configuration, on top of the kind's defaults.
func decodeBackend(n *yaml.Node, kinds repo.Registry) (backendSpec, error) {
	if n.Kind != yaml.MappingNode {
		return backendSpec{}, errors.New("want a mapping with name, type and the type's settings")
	}

	var (
		name, typ string
		rest      = &yaml.Node{Kind: yaml.MappingNode}
	)

	for i := 0; i+1 < len(n.Content); i += 2 {
		switch k, v := n.Content[i], n.Content[i+1]; k.Value {
		case "name":
			name = v.Value
		case "type":
			typ = v.Value
		default:
			rest.Content = append(rest.Content, k, v)
		}
	}

	if typ == "" {
		return backendSpec{}, fmt.Errorf("type is required: one of %s", strings.Join(kinds.Names(), ", "))
	}

	k, err := kinds.Lookup(typ)
	if err != nil {
		return backendSpec{}, err
	}

	if name == "" {
		name = typ
	}

	cfg := k.New()

	if len(rest.Content) > 0 {
		body, err := yaml.Marshal(rest)
		if err != nil {
			return backendSpec{}, err
		}

		dec := yaml.NewDecoder(bytes.NewReader(body))
		dec.KnownFields(true)

		if err := dec.Decode(cfg); err != nil {
			return backendSpec{}, fmt.Errorf("%s (type %s): %w", name, k.Name, err)
		}
	}

	return backendSpec{Name: name, Kind: k, Config: cfg}, nil
}

// setFields sets fields of a configuration by flag name, as the environment would.
func setFields(c repo.BackendConfig, values map[string]string) error {
	for _, f := range c.Fields() {
		if v, ok := values[f.Flag]; ok {
			if err := f.Value.Set(v); err != nil {
				return fmt.Errorf("%s: %w", f.Flag, err)
			}

			delete(values, f.Flag)
		}
	}

	if len(values) > 0 {
		return fmt.Errorf("settings not read by this kind: %v", values)
	}

	return nil
}

// openBackends opens every backend; each gets its own state directory.
func openBackends(specs []backendSpec, stateDir string, logger *slog.Logger) ([]repo.Backend, error) {
	out := make([]repo.Backend, 0, len(specs))

	for _, s := range specs {
		b, err := s.Config.Open(repo.OpenEnv{
			Name: s.Name, StateDir: filepath.Join(stateDir, s.Name), Logger: logger.With("backend", s.Name),
		})
		if err != nil {
			return out, fmt.Errorf("backend %s: %w", s.Name, err)
		}

		out = append(out, b)
	}

	return out, nil
}

// describe summarises a backend for --check-config, without secrets.
func describe(s backendSpec) string {
	return fmt.Sprintf("%s (%s): %s", s.Name, s.Kind.Name, s.Config.Describe())
}

func backendNames(bs []backendSpec) string {
	names := make([]string, len(bs))
	for i, b := range bs {
		names[i] = b.Name
	}

	return strings.Join(names, ",")
}

// sourceNameFlag is the setting that names a PVC's ReplicationSource (and, without
// DESTINATION_NAME_TEMPLATE, its ReplicationDestination) in the shipped policies (the chart
// passes one value to both the policies and the oracle).
const sourceNameFlag = "kopia-source-name-template"

// replicationNames returns the names the policies give a PVC's RS and RD: the RS is named by the
// source-name template of the first backend that reads one, else the policies' default
// ({pvc}-backup); the RD by destinationTemplate, else as the RS.
func replicationNames(specs []backendSpec, destinationTemplate string) (rs, rd func(repo.PVC) string) {
	tmpl := repo.DefaultSourceNameTemplate

	for _, s := range specs {
		if f, ok := field(s.Config, sourceNameFlag); ok && f.Value.String() != "" {
			tmpl = f.Value.String()
			break
		}
	}

	rdTmpl := destinationTemplate
	if rdTmpl == "" {
		rdTmpl = tmpl
	}

	return func(p repo.PVC) string { return repo.ExpandTemplate(tmpl, p) },
		func(p repo.PVC) string { return repo.ExpandTemplate(rdTmpl, p) }
}

// field returns the setting of c whose flag is name.
func field(c repo.BackendConfig, name string) (repo.Field, bool) {
	for _, f := range c.Fields() {
		if f.Flag == name {
			return f, true
		}
	}

	return repo.Field{}, false
}
