package kubernetes

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// decoder decodes core/v1 and apps/v1 objects strictly: a field the type
// does not have, or one given twice, is an error.
var decoder = func() runtime.Decoder {
	s := runtime.NewScheme()
	if err := corev1.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := appsv1.AddToScheme(s); err != nil {
		panic(err)
	}
	return serializer.NewCodecFactory(s, serializer.EnableStrict).UniversalDeserializer()
}()

// decodeAll decodes every YAML document of b.
func decodeAll(t *testing.T, what string, b []byte) []runtime.Object {
	t.Helper()
	var out []runtime.Object
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	for {
		doc, err := r.Read()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		var probe map[string]any
		if err := yaml.Unmarshal(doc, &probe); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if len(probe) == 0 {
			continue // only comments
		}
		obj, gvk, err := decoder.Decode(doc, nil, nil)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		t.Logf("%s: %s %s", what, gvk.Kind, obj.(interface{ GetName() string }).GetName())
		out = append(out, obj)
	}
}

// manifests are the objects of the directory's manifests.
type manifests struct {
	service *corev1.Service
	sets    map[string]*appsv1.StatefulSet // by architecture
}

func load(t *testing.T) manifests {
	t.Helper()
	m := manifests{sets: map[string]*appsv1.StatefulSet{}}
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f == "kustomization.yaml" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, obj := range decodeAll(t, f, b) {
			switch o := obj.(type) {
			case *corev1.Service:
				if m.service != nil {
					t.Fatalf("%s: a second Service", f)
				}
				m.service = o
			case *appsv1.StatefulSet:
				arch := o.Spec.Template.Spec.NodeSelector["kubernetes.io/arch"]
				if f != "statefulset-"+arch+".yaml" {
					t.Errorf("%s holds the StatefulSet of %q", f, arch)
				}
				m.sets[arch] = o
			default:
				t.Errorf("%s: unexpected %T", f, obj)
			}
		}
	}
	if m.service == nil || len(m.sets) != 2 {
		t.Fatalf("want a Service and a StatefulSet per platform, got %v and %d", m.service != nil, len(m.sets))
	}
	return m
}

// The manifests decode strictly as Kubernetes objects, and fit together:
// a headless Service selecting the pods of a StatefulSet per platform,
// each on its platform's nodes, labelled as buildx's kubernetes driver
// labels its own, with its state on a persistent volume, the daemon's
// certificates from the Secret create-certs.sh makes, and probes that ask
// buildctl.
func TestManifestsAreKubernetesObjects(t *testing.T) {
	m := load(t)
	svc := m.service
	if svc.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("Service %s: clusterIP %q, want None (headless: one record per pod)", svc.Name, svc.Spec.ClusterIP)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name == "" || svc.Spec.Ports[0].Protocol != corev1.ProtocolTCP {
		t.Fatalf("Service ports %+v, want one named tcp port (its name makes the SRV record)", svc.Spec.Ports)
	}
	port := svc.Spec.Ports[0]
	for arch, ss := range m.sets {
		what := "StatefulSet " + ss.Name
		if ss.Spec.ServiceName != svc.Name {
			t.Errorf("%s: serviceName %q, want %q (the pods' DNS names hang under it)", what, ss.Spec.ServiceName, svc.Name)
		}
		if ss.Name != "buildkitd-"+arch {
			t.Errorf("%s: want buildkitd-%s", what, arch)
		}
		if ss.Spec.Selector.MatchLabels["app"] != ss.Name || len(ss.Spec.Selector.MatchLabels) != 1 {
			t.Errorf("%s: selector %v, want app=%s alone (buildx's kubernetes driver lists the pods of the StatefulSet it is named after with that selector)", what, ss.Spec.Selector.MatchLabels, ss.Name)
		}
		pod := ss.Spec.Template
		for k, v := range ss.Spec.Selector.MatchLabels {
			if pod.Labels[k] != v {
				t.Errorf("%s: the selector's %s=%s is not on its pods", what, k, v)
			}
		}
		for k, v := range svc.Spec.Selector {
			if pod.Labels[k] != v {
				t.Errorf("%s: the Service selects %s=%s, which its pods lack", what, k, v)
			}
		}
		for _, other := range m.sets {
			if other != ss && labelsMatch(ss.Spec.Selector.MatchLabels, other.Spec.Template.Labels) {
				t.Errorf("%s selects the pods of %s too", what, other.Name)
			}
		}
		if len(pod.Spec.Containers) != 1 {
			t.Fatalf("%s: %d containers", what, len(pod.Spec.Containers))
		}
		c := pod.Spec.Containers[0]
		if !strings.HasPrefix(c.Image, "moby/buildkit:v0.33.1") {
			t.Errorf("%s: image %s, want moby/buildkit:v0.33.1, the version Larder is built on", what, c.Image)
		}
		args := strings.Join(c.Args, " ")
		for _, want := range []string{"--addr unix:///run/buildkit/buildkitd.sock", fmt.Sprintf("--addr tcp://0.0.0.0:%d", port.Port), "--tlscacert /certs/ca.pem", "--tlscert /certs/cert.pem", "--tlskey /certs/key.pem"} {
			if !strings.Contains(args, want) {
				t.Errorf("%s: args %q lack %q", what, args, want)
			}
		}
		if port.TargetPort.Type == intstr.String {
			if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool {
				return p.Name == port.TargetPort.StrVal && p.ContainerPort == port.Port
			}) {
				t.Errorf("%s: no container port named %s on %d", what, port.TargetPort.StrVal, port.Port)
			}
		}
		for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
			if p == nil || p.Exec == nil || strings.Join(p.Exec.Command, " ") != "buildctl debug workers" {
				t.Errorf("%s: probe %+v, want buildctl debug workers (as BuildKit's examples)", what, p)
			}
		}
		mounts := map[string]string{}
		for _, vm := range c.VolumeMounts {
			mounts[vm.MountPath] = vm.Name
		}
		state := mounts["/var/lib/buildkit"]
		if !slices.ContainsFunc(ss.Spec.VolumeClaimTemplates, func(p corev1.PersistentVolumeClaim) bool { return p.Name == state }) {
			t.Errorf("%s: /var/lib/buildkit is on %q, want a volume claim template", what, state)
		}
		if ss.Spec.PersistentVolumeClaimRetentionPolicy == nil || ss.Spec.PersistentVolumeClaimRetentionPolicy.WhenScaled != appsv1.RetainPersistentVolumeClaimRetentionPolicyType {
			t.Errorf("%s: scaling down must keep the volumes", what)
		}
		certs := mounts["/certs"]
		if !slices.ContainsFunc(pod.Spec.Volumes, func(v corev1.Volume) bool {
			return v.Name == certs && v.Secret != nil && v.Secret.SecretName == "buildkit-daemon-certs"
		}) {
			t.Errorf("%s: /certs is not the Secret buildkit-daemon-certs", what)
		}
		grace := int64(30)
		if pod.Spec.TerminationGracePeriodSeconds != nil {
			grace = *pod.Spec.TerminationGracePeriodSeconds
		}
		if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || grace < 60 {
			t.Errorf("%s: a pod that goes must keep serving while fleets notice, and let solves finish", what)
		}
	}
}

func labelsMatch(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// kustomization.yaml lists every manifest, and kubectl kustomize (which
// works without a cluster, unlike kubectl apply --dry-run=client) renders
// the same objects.
func TestKustomizationListsEveryManifest(t *testing.T) {
	var k struct {
		APIVersion string   `json:"apiVersion"`
		Kind       string   `json:"kind"`
		Resources  []string `json:"resources"`
	}
	b, err := os.ReadFile("kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, &k); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("*.yaml")
	files = slices.DeleteFunc(files, func(f string) bool { return f == "kustomization.yaml" })
	slices.Sort(k.Resources)
	if !slices.Equal(files, k.Resources) {
		t.Errorf("kustomization.yaml lists %v, the directory holds %v", k.Resources, files)
	}
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skipf("no kubectl to render it: %v", err)
	}
	cmd := exec.Command(kubectl, "kustomize", ".")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+filepath.Join(t.TempDir(), "none"))
	out, err := cmd.Output()
	if err != nil {
		t.Skipf("kubectl kustomize: %v", err)
	}
	objs := decodeAll(t, "kubectl kustomize", out)
	if len(objs) != len(files) {
		t.Errorf("kubectl kustomize rendered %d objects, want %d", len(objs), len(files))
	}
}

// The decoder the tests use refuses what Kubernetes would: a field the
// type does not have, a value of the wrong type.
func TestDecoderIsStrict(t *testing.T) {
	for _, doc := range []string{
		"apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  clusterIPP: None\n",
		"apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  ports:\n    - port: notanumber\n",
		"apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: x\nspec:\n  replicas: two\n",
	} {
		if _, _, err := decoder.Decode([]byte(doc), nil, nil); err == nil {
			t.Errorf("decoded %q", doc)
		} else {
			t.Logf("%v", err)
		}
	}
}
