package jobrunner

// The subset of the batch/v1 Job and core/v1 objects the runner reads, as the API server
// serves them (JSON field names of k8s.io/api). Fields a mover Job may carry that the runner
// cannot honour are decoded too, so that it refuses them instead of ignoring them.

type job struct {
	Metadata objectMeta `json:"metadata"`
	Spec     struct {
		Parallelism  *int32      `json:"parallelism"`
		BackoffLimit *int32      `json:"backoffLimit"`
		Suspend      *bool       `json:"suspend"`
		Template     podTemplate `json:"template"`
	} `json:"spec"`
	Status struct {
		Succeeded int32 `json:"succeeded"`
		Failed    int32 `json:"failed"`
	} `json:"status"`
}

type objectMeta struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	UID       string `json:"uid"`
}

type podTemplate struct {
	Spec podSpec `json:"spec"`
}

type podSpec struct {
	Containers      []container         `json:"containers"`
	InitContainers  []container         `json:"initContainers"`
	Volumes         []volume            `json:"volumes"`
	SecurityContext *podSecurityContext `json:"securityContext"`
	HostNetwork     bool                `json:"hostNetwork"`
}

type podSecurityContext struct {
	RunAsUser          *int64  `json:"runAsUser"`
	RunAsGroup         *int64  `json:"runAsGroup"`
	RunAsNonRoot       *bool   `json:"runAsNonRoot"`
	FSGroup            *int64  `json:"fsGroup"`
	SupplementalGroups []int64 `json:"supplementalGroups"`
}

type securityContext struct {
	RunAsUser              *int64 `json:"runAsUser"`
	RunAsGroup             *int64 `json:"runAsGroup"`
	RunAsNonRoot           *bool  `json:"runAsNonRoot"`
	ReadOnlyRootFilesystem *bool  `json:"readOnlyRootFilesystem"`
}

type container struct {
	Name            string           `json:"name"`
	Command         []string         `json:"command"`
	Args            []string         `json:"args"`
	WorkingDir      string           `json:"workingDir"`
	Env             []envVar         `json:"env"`
	EnvFrom         []envFromSource  `json:"envFrom"`
	VolumeMounts    []volumeMount    `json:"volumeMounts"`
	SecurityContext *securityContext `json:"securityContext"`
}

type envVar struct {
	Name      string `json:"name"`
	Value     string `json:"value"`
	ValueFrom *struct {
		SecretKeyRef    *keyRef `json:"secretKeyRef"`
		ConfigMapKeyRef *keyRef `json:"configMapKeyRef"`
		FieldRef        *struct {
			FieldPath string `json:"fieldPath"`
		} `json:"fieldRef"`
		ResourceFieldRef any `json:"resourceFieldRef"`
	} `json:"valueFrom"`
}

type keyRef struct {
	Name     string `json:"name"`
	Key      string `json:"key"`
	Optional *bool  `json:"optional"`
}

type envFromSource struct {
	Prefix       string `json:"prefix"`
	SecretRef    *ref   `json:"secretRef"`
	ConfigMapRef *ref   `json:"configMapRef"`
}

type ref struct {
	Name     string `json:"name"`
	Optional *bool  `json:"optional"`
}

type volumeMount struct {
	Name      string `json:"name"`
	MountPath string `json:"mountPath"`
	SubPath   string `json:"subPath"`
	ReadOnly  bool   `json:"readOnly"`
}

type volume struct {
	Name                  string `json:"name"`
	PersistentVolumeClaim *struct {
		ClaimName string `json:"claimName"`
		ReadOnly  bool   `json:"readOnly"`
	} `json:"persistentVolumeClaim"`
	EmptyDir *struct {
		Medium string `json:"medium"`
	} `json:"emptyDir"`
	Secret *struct {
		SecretName  string      `json:"secretName"`
		Items       []keyToPath `json:"items"`
		DefaultMode *int32      `json:"defaultMode"`
		Optional    *bool       `json:"optional"`
	} `json:"secret"`
	NFS *struct {
		Server   string `json:"server"`
		Path     string `json:"path"`
		ReadOnly bool   `json:"readOnly"`
	} `json:"nfs"`
}

type keyToPath struct {
	Key  string `json:"key"`
	Path string `json:"path"`
	Mode *int32 `json:"mode"`
}

// secret is a Secret or a ConfigMap: data holds base64 values (Secret), stringData plain ones
// (ConfigMap's data is decoded into plain).
type secret struct {
	Data map[string][]byte `json:"data"`
}

type configMap struct {
	Data map[string]string `json:"data"`
}

func optional(b *bool) bool { return b != nil && *b }
