package jobrunner

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// sources reads the Secrets and ConfigMaps of one namespace for one run, each once.
type sources struct {
	api        API
	namespace  string
	secrets    map[string]*secret
	configMaps map[string]*configMap
}

func newSources(api API, namespace string) *sources {
	return &sources{api: api, namespace: namespace, secrets: map[string]*secret{}, configMaps: map[string]*configMap{}}
}

// secret returns the named Secret's data, nil when it does not exist.
func (s *sources) secret(ctx context.Context, name string) (map[string][]byte, error) {
	if sec, ok := s.secrets[name]; ok {
		if sec == nil {
			return nil, nil
		}

		return sec.Data, nil
	}

	var sec secret

	err := s.api.Get(ctx, "/api/v1/namespaces/"+s.namespace+"/secrets/"+name, &sec)
	switch {
	case errors.Is(err, ErrNotFound):
		s.secrets[name] = nil
		return nil, nil
	case err != nil:
		return nil, err
	}

	if sec.Data == nil {
		sec.Data = map[string][]byte{}
	}

	s.secrets[name] = &sec

	return sec.Data, nil
}

// configMap returns the named ConfigMap's data as bytes, nil when it does not exist.
func (s *sources) configMap(ctx context.Context, name string) (map[string][]byte, error) {
	cm, ok := s.configMaps[name]
	if !ok {
		var got configMap

		err := s.api.Get(ctx, "/api/v1/namespaces/"+s.namespace+"/configmaps/"+name, &got)
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return nil, err
		default:
			cm = &got
		}

		s.configMaps[name] = cm
	}

	if cm == nil {
		return nil, nil
	}

	out := make(map[string][]byte, len(cm.Data))
	for k, v := range cm.Data {
		out[k] = []byte(v)
	}

	return out, nil
}

// environment resolves a container's environment as the kubelet does: envFrom first (in order,
// each key prefixed; keys that are not valid variable names skipped), then env (in order, a
// later entry replacing an earlier one of the same name), with $(VAR) references to variables
// defined before expanded. A reference to a missing Secret or ConfigMap, or to a missing key,
// fails unless it is optional (the kubelet's CreateContainerConfigError).
func environment(ctx context.Context, src *sources, pod objectMeta, c container) ([]string, map[string]string, error) {
	var (
		names  []string
		values = map[string]string{}
	)

	set := func(name, value string) {
		if _, ok := values[name]; !ok {
			names = append(names, name)
		}

		values[name] = value
	}

	for _, from := range c.EnvFrom {
		data, what, opt, err := fromSource(ctx, src, from)
		if err != nil {
			return nil, nil, err
		}

		if data == nil {
			if opt {
				continue
			}

			return nil, nil, fmt.Errorf("jobrunner: container %s: envFrom %s not found", c.Name, what)
		}

		for k, v := range data {
			if validEnvName(from.Prefix + k) {
				set(from.Prefix+k, string(v))
			}
		}
	}

	for _, e := range c.Env {
		if e.ValueFrom == nil {
			set(e.Name, expand(e.Value, values))
			continue
		}

		v, ok, err := valueFrom(ctx, src, pod, e)
		if err != nil {
			return nil, nil, fmt.Errorf("jobrunner: container %s: env %s: %w", c.Name, e.Name, err)
		}

		if ok {
			set(e.Name, v)
		}
	}

	out := make([]string, 0, len(names))
	for _, n := range names {
		out = append(out, n+"="+values[n])
	}

	return out, values, nil
}

func fromSource(ctx context.Context, src *sources, from envFromSource) (map[string][]byte, string, bool, error) {
	switch {
	case from.SecretRef != nil:
		data, err := src.secret(ctx, from.SecretRef.Name)
		return data, "Secret " + from.SecretRef.Name, optional(from.SecretRef.Optional), err
	case from.ConfigMapRef != nil:
		data, err := src.configMap(ctx, from.ConfigMapRef.Name)
		return data, "ConfigMap " + from.ConfigMapRef.Name, optional(from.ConfigMapRef.Optional), err
	default:
		return nil, "", false, errors.New("jobrunner: an envFrom entry names neither a Secret nor a ConfigMap")
	}
}

// valueFrom resolves one env entry's valueFrom; ok is false when an optional source or key is
// missing (the variable is then left out, as the kubelet does).
func valueFrom(ctx context.Context, src *sources, pod objectMeta, e envVar) (string, bool, error) {
	vf := e.ValueFrom

	var (
		ref  *keyRef
		data map[string][]byte
		kind string
		err  error
	)

	switch {
	case vf.SecretKeyRef != nil:
		ref, kind = vf.SecretKeyRef, "Secret"
		data, err = src.secret(ctx, ref.Name)
	case vf.ConfigMapKeyRef != nil:
		ref, kind = vf.ConfigMapKeyRef, "ConfigMap"
		data, err = src.configMap(ctx, ref.Name)
	case vf.FieldRef != nil:
		return fieldRef(pod, vf.FieldRef.FieldPath)
	default:
		return "", false, errors.New("only secretKeyRef, configMapKeyRef and fieldRef (metadata) are simulated")
	}

	if err != nil {
		return "", false, err
	}

	if data == nil {
		if optional(ref.Optional) {
			return "", false, nil
		}

		return "", false, fmt.Errorf("%s %q not found", kind, ref.Name)
	}

	v, ok := data[ref.Key]
	if !ok {
		if optional(ref.Optional) {
			return "", false, nil
		}

		return "", false, fmt.Errorf("couldn't find key %s in %s %s/%s", ref.Key, kind, src.namespace, ref.Name)
	}

	return string(v), true, nil
}

func fieldRef(pod objectMeta, path string) (string, bool, error) {
	switch path {
	case "metadata.name":
		return pod.Name, true, nil
	case "metadata.namespace":
		return pod.Namespace, true, nil
	case "metadata.uid":
		return pod.UID, true, nil
	default:
		return "", false, fmt.Errorf("fieldRef %s is not simulated", path)
	}
}

// expand replaces $(NAME) by the value of a variable defined before, leaves a reference to an
// undefined one as it is, and makes $$ a literal $ (Kubernetes' dependent environment variables).
func expand(s string, values map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}

	var b strings.Builder

	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}

		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}

			name := s[i+2 : i+2+end]
			if v, ok := values[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}

			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}

	return b.String()
}

// validEnvName is Kubernetes' rule for a variable name: printable ASCII but '=', not starting
// with a digit.
func validEnvName(s string) bool {
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		return false
	}

	for _, c := range []byte(s) {
		if c < 0x20 || c > 0x7e || c == '=' {
			return false
		}
	}

	return true
}
