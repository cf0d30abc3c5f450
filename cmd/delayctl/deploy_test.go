package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/delayctl/delayctl/pkg/model"
	"github.com/delayctl/delayctl/pkg/serve"
	"github.com/delayctl/delayctl/pkg/slo"
	"github.com/delayctl/delayctl/pkg/train"
	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	sigsyaml "sigs.k8s.io/yaml"
)

const manifestDir = "../../deploy/k8s"

// Objects created with kubectl from local files rather than shipped as manifests (see the
// comments in deployment.yaml and bench-job.yaml).
var createdByKubectl = []string{"ConfigMap/delayctl-model", "ConfigMap/delayctl-bench-bodies", "Secret/delayctl-bench-key"}

type manifests struct {
	deploy   *appsv1.Deployment
	svc      *corev1.Service
	hpa      *autoscalingv2.HorizontalPodAutoscaler
	pdb      *policyv1.PodDisruptionBudget
	jobs     []*batchv1.Job
	cms      map[string]*corev1.ConfigMap
	secrets  map[string]*corev1.Secret
	pvcs     map[string]*corev1.PersistentVolumeClaim
	files    []string
	declared map[string]bool // "Kind/name"
}

// loadManifests decodes every file strictly: unknown or duplicated fields are errors, as
// `kubectl apply --validate=strict` would report them.
func loadManifests(t *testing.T) *manifests {
	t.Helper()
	m := &manifests{cms: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{},
		pvcs: map[string]*corev1.PersistentVolumeClaim{}, declared: map[string]bool{}}
	paths, err := filepath.Glob(filepath.Join(manifestDir, "*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no manifests in %s: %v", manifestDir, err)
	}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := sigsyaml.Unmarshal(data, &head); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		strict := func(into any) {
			if err := sigsyaml.UnmarshalStrict(data, into); err != nil {
				t.Errorf("%s: %v", filepath.Base(p), err)
			}
		}
		want := map[string]string{
			"Deployment": "apps/v1", "Service": "v1", "ConfigMap": "v1", "Secret": "v1",
			"HorizontalPodAutoscaler": "autoscaling/v2", "PodDisruptionBudget": "policy/v1",
			"Job": "batch/v1", "PersistentVolumeClaim": "v1", "Kustomization": "kustomize.config.k8s.io/v1beta1",
		}
		if want[head.Kind] != head.APIVersion {
			t.Errorf("%s: kind %q with apiVersion %q, want %q", filepath.Base(p), head.Kind, head.APIVersion, want[head.Kind])
		}
		m.files = append(m.files, filepath.Base(p))
		m.declared[head.Kind+"/"+head.Metadata.Name] = true
		switch head.Kind {
		case "Deployment":
			m.deploy = new(appsv1.Deployment)
			strict(m.deploy)
		case "Service":
			m.svc = new(corev1.Service)
			strict(m.svc)
		case "HorizontalPodAutoscaler":
			m.hpa = new(autoscalingv2.HorizontalPodAutoscaler)
			strict(m.hpa)
		case "PodDisruptionBudget":
			m.pdb = new(policyv1.PodDisruptionBudget)
			strict(m.pdb)
		case "Job":
			j := new(batchv1.Job)
			strict(j)
			m.jobs = append(m.jobs, j)
		case "ConfigMap":
			c := new(corev1.ConfigMap)
			strict(c)
			m.cms[c.Name] = c
		case "Secret":
			s := new(corev1.Secret)
			strict(s)
			m.secrets[s.Name] = s
		case "PersistentVolumeClaim":
			c := new(corev1.PersistentVolumeClaim)
			strict(c)
			m.pvcs[c.Name] = c
		case "Kustomization":
			var k struct {
				APIVersion string   `json:"apiVersion"`
				Kind       string   `json:"kind"`
				Resources  []string `json:"resources"`
			}
			strict(&k)
			for _, r := range k.Resources {
				if _, err := os.Stat(filepath.Join(manifestDir, r)); err != nil {
					t.Errorf("kustomization.yaml lists %s: %v", r, err)
				}
			}
		default:
			t.Errorf("%s: unexpected kind %q", filepath.Base(p), head.Kind)
		}
	}
	if m.deploy == nil || m.svc == nil || m.hpa == nil || m.pdb == nil || len(m.jobs) != 2 {
		t.Fatalf("want a Deployment, Service, HPA, PDB and two Jobs; have %v", m.files)
	}
	return m
}

// parseCommand resolves args against the real delayctl command tree and parses its flags,
// so a manifest can only use commands and flags that exist, with values they accept.
func parseCommand(t *testing.T, where string, args []string) *cobra.Command {
	t.Helper()
	ios, _, _ := newTestIO(nil)
	root := newRootCmd(ios)
	cmd, rest, err := root.Find(args)
	if err != nil {
		t.Fatalf("%s: %v: %v", where, args, err)
	}
	if err := cmd.ParseFlags(rest); err != nil {
		t.Fatalf("%s: %s: %v", where, cmd.CommandPath(), err)
	}
	if cmd.Args != nil {
		if err := cmd.Args(cmd, cmd.Flags().Args()); err != nil {
			t.Fatalf("%s: %s: %v", where, cmd.CommandPath(), err)
		}
	}
	return cmd
}

// applyServeConfig sets the serve command's flags from a config file's serve: section,
// failing on keys that are not flags and values the flags refuse.
func applyServeConfig(t *testing.T, cmd *cobra.Command, doc string) {
	t.Helper()
	var cfg struct {
		Serve map[string]any `yaml:"serve"`
	}
	if err := yaml.Unmarshal([]byte(doc), &cfg); err != nil {
		t.Fatal(err)
	}
	for k, v := range cfg.Serve {
		f := cmd.Flags().Lookup(k)
		if f == nil {
			t.Errorf("serve.yaml sets %q, which is not a flag of delayctl serve", k)
			continue
		}
		if err := setFlag(f, v); err != nil {
			t.Errorf("serve.yaml %s: %v", k, err)
		}
	}
}

func flagString(t *testing.T, cmd *cobra.Command, name string) string {
	t.Helper()
	f := cmd.Flags().Lookup(name)
	if f == nil {
		t.Fatalf("%s has no --%s", cmd.CommandPath(), name)
	}
	return f.Value.String()
}

func flagDuration(t *testing.T, cmd *cobra.Command, name string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(flagString(t, cmd, name))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func portOf(t *testing.T, addr string) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	n, _ := strconv.Atoi(p)
	return int32(n)
}

// mountedFrom returns the volume mounted at the longest mount path containing path.
func mountedFrom(spec corev1.PodSpec, c corev1.Container, path string) (*corev1.Volume, string) {
	var best corev1.VolumeMount
	for _, vm := range c.VolumeMounts {
		if strings.HasPrefix(path, strings.TrimSuffix(vm.MountPath, "/")+"/") && len(vm.MountPath) > len(best.MountPath) {
			best = vm
		}
	}
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == best.Name && best.Name != "" {
			return &spec.Volumes[i], strings.TrimPrefix(path, strings.TrimSuffix(best.MountPath, "/")+"/")
		}
	}
	return nil, ""
}

func checkVolumes(t *testing.T, m *manifests, where string, spec corev1.PodSpec) {
	t.Helper()
	for _, c := range append(spec.InitContainers, spec.Containers...) {
		for _, vm := range c.VolumeMounts {
			if !slices.ContainsFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == vm.Name }) {
				t.Errorf("%s: container %s mounts undeclared volume %q", where, c.Name, vm.Name)
			}
		}
	}
	for _, v := range spec.Volumes {
		var ref string
		switch {
		case v.ConfigMap != nil:
			ref = "ConfigMap/" + v.ConfigMap.Name
		case v.Secret != nil:
			ref = "Secret/" + v.Secret.SecretName
		case v.PersistentVolumeClaim != nil:
			ref = "PersistentVolumeClaim/" + v.PersistentVolumeClaim.ClaimName
		}
		if ref != "" && !m.declared[ref] && !slices.Contains(createdByKubectl, ref) {
			t.Errorf("%s: volume %s refers to %s, which no manifest declares", where, v.Name, ref)
		}
		if v.ConfigMap != nil && m.cms[v.ConfigMap.Name] != nil {
			for _, it := range v.ConfigMap.Items {
				if _, ok := m.cms[v.ConfigMap.Name].Data[it.Key]; !ok {
					t.Errorf("%s: volume %s projects key %q missing from ConfigMap %s", where, v.Name, it.Key, v.ConfigMap.Name)
				}
			}
		}
	}
}

func checkRestricted(t *testing.T, where string, spec corev1.PodSpec) {
	t.Helper()
	if spec.SecurityContext == nil || spec.SecurityContext.RunAsNonRoot == nil || !*spec.SecurityContext.RunAsNonRoot {
		t.Errorf("%s: pod must set runAsNonRoot", where)
	}
	for _, c := range append(spec.InitContainers, spec.Containers...) {
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			t.Errorf("%s: container %s must drop ALL capabilities, forbid privilege escalation and mount its root read-only", where, c.Name)
		}
	}
}

// namedPort is the container's port of that name, or nil.
func namedPort(c corev1.Container, name string) *corev1.ContainerPort {
	for i := range c.Ports {
		if c.Ports[i].Name == name {
			return &c.Ports[i]
		}
	}
	return nil
}

// trainSynth trains a model on rows synthetic flights.
func trainSynth(t *testing.T, rows int) *model.Model {
	t.Helper()
	data := filepath.Join(t.TempDir(), "synth.csv")
	f, err := os.Create(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := train.Synth(f, train.SynthOptions{Rows: rows, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	res, err := train.Fit(context.Background(), train.DefaultConfig(), train.Options{DataPath: data})
	if err != nil {
		t.Fatal(err)
	}
	return res.Model
}

// testServer serves a freshly trained model with delayctl's real handler: its main routes,
// and the operations routes as --metrics-addr metricsAddr would serve them (the main routes'
// when metricsAddr is empty).
func testServer(t *testing.T, metricsAddr string) (main, ops *httptest.Server) {
	t.Helper()
	opts := serve.Options{MaxBodyBytes: 1 << 20, MaxBatch: 10, MaxInflight: 4, MetricsAddr: metricsAddr}
	s, err := serve.New(trainSynth(t, 2000), opts, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	main = httptest.NewServer(s.Handler())
	t.Cleanup(main.Close)
	if metricsAddr == "" {
		return main, main
	}
	ops = httptest.NewServer(s.OpsHandler())
	t.Cleanup(ops.Close)
	return main, ops
}

func TestManifests(t *testing.T) {
	m := loadManifests(t)
	d := m.deploy
	pod := d.Spec.Template
	c := pod.Spec.Containers[0]

	// The server command, with the flags its config file sets.
	cmd := parseCommand(t, "deployment", c.Args)
	if cmd.Name() != "serve" {
		t.Fatalf("the deployment runs %q, want delayctl serve", cmd.CommandPath())
	}
	cfgPath := flagString(t, cmd, "config")
	vol, key := mountedFrom(pod.Spec, c, cfgPath)
	if vol == nil || vol.ConfigMap == nil {
		t.Fatalf("--config %s is not on a ConfigMap volume", cfgPath)
	}
	applyServeConfig(t, cmd, m.cms[vol.ConfigMap.Name].Data[key])

	addr := flagString(t, cmd, "addr")
	port := portOf(t, addr)
	if host, _, _ := net.SplitHostPort(addr); host != "0.0.0.0" && host != "" {
		t.Errorf("--addr %s listens on %s only; in a pod it must listen on all interfaces", addr, host)
	}
	if httpPort := namedPort(c, "http"); httpPort == nil || httpPort.ContainerPort != port {
		t.Errorf("container port http = %v, but delayctl serve listens on %d", httpPort, port)
	}

	// Files the server reads come from mounted volumes of the right kind.
	if v, _ := mountedFrom(pod.Spec, c, flagString(t, cmd, "model")); v == nil {
		t.Errorf("--model %s is not on a mounted volume", flagString(t, cmd, "model"))
	}
	keysPath := flagString(t, cmd, "auth-keys")
	if v, k := mountedFrom(pod.Spec, c, keysPath); v == nil || v.Secret == nil {
		t.Errorf("--auth-keys %s must come from a Secret volume", keysPath)
	} else if sec := m.secrets[v.Secret.SecretName]; sec == nil {
		t.Errorf("--auth-keys Secret %s is not declared", v.Secret.SecretName)
	} else if names, err := serve.ParseKeys(strings.NewReader(sec.StringData[k])); err != nil || len(names) == 0 {
		t.Errorf("Secret %s key %s does not parse as an --auth-keys file: %v", sec.Name, k, err)
	}

	// --metrics-addr: its own named container port, which the pod annotations tell
	// Prometheus to scrape; without it, the server port is scraped.
	metricsAddr := flagString(t, cmd, "metrics-addr")
	scrapePort := port
	if metricsAddr != "" {
		scrapePort = portOf(t, metricsAddr)
		if host, _, _ := net.SplitHostPort(metricsAddr); host != "0.0.0.0" && host != "" {
			t.Errorf("--metrics-addr %s listens on %s only; Prometheus and kubelet reach the pod's IP", metricsAddr, host)
		}
		if mp := namedPort(c, "metrics"); mp == nil || mp.ContainerPort != scrapePort {
			t.Errorf("container port metrics = %v, but --metrics-addr is %s", mp, metricsAddr)
		}
		for _, sp := range m.svc.Spec.Ports {
			if sp.TargetPort.String() == "metrics" || sp.TargetPort.IntValue() == int(scrapePort) {
				t.Errorf("the Service exposes the metrics port %s: /admin/reload lives there", sp.TargetPort.String())
			}
		}
	}
	ann := pod.Annotations
	if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/port"] != fmt.Sprint(scrapePort) || ann["prometheus.io/path"] != "/metrics" {
		t.Errorf("scrape annotations %v; want port %d and path /metrics", ann, scrapePort)
	}

	// Probes hit routes the server really answers, on the port that serves them, without a key.
	ts, ops := testServer(t, metricsAddr)
	public := strings.Split(strings.Trim(flagString(t, cmd, "public-routes"), "[]"), ",")
	for name, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe, "startup": c.StartupProbe} {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s probe must be an HTTP GET", name)
			continue
		}
		srv := ts
		switch pp := p.HTTPGet.Port; {
		case pp.String() == "http" || pp.IntValue() == int(port):
		case metricsAddr != "" && (pp.String() == "metrics" || pp.IntValue() == int(scrapePort)):
			srv = ops
		default:
			t.Errorf("%s probe port %s is not the server's", name, pp.String())
		}
		if !slices.Contains(public, p.HTTPGet.Path) {
			t.Errorf("%s probe path %s needs an API key: add it to public-routes", name, p.HTTPGet.Path)
		}
		resp, err := http.Get(srv.URL + p.HTTPGet.Path)
		if err != nil {
			t.Errorf("%s probe GET %s: %v", name, p.HTTPGet.Path, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s probe GET %s: %s", name, p.HTTPGet.Path, resp.Status)
		}
	}
	if c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("readiness must probe /readyz (fails while draining) and liveness /healthz")
	}

	// Termination: kube-proxy and load balancers learn of a deleted pod seconds after SIGTERM,
	// so serve itself keeps serving that long (the image has no shell for a preStop exec, and
	// preStop.sleep is newer than the supported minimum); the grace period covers it all.
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
		t.Error("no preStop hook: the drain pause is delayctl serve's --drain-delay")
	}
	drain := flagDuration(t, cmd, "drain-delay")
	if drain < 5*time.Second {
		t.Errorf("--drain-delay %v: endpoints take seconds to drop a terminating pod; want at least 5s", drain)
	}
	need := drain + flagDuration(t, cmd, "shutdown-timeout")
	if grace := time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second; grace <= need {
		t.Errorf("terminationGracePeriodSeconds %v must exceed drain-delay + shutdown-timeout = %v", grace, need)
	}
	if c.Resources.Limits.Memory().IsZero() || c.Resources.Requests.Cpu().IsZero() {
		t.Error("the server needs CPU requests and a memory limit")
	}
	if d.Spec.Strategy.RollingUpdate == nil || d.Spec.Strategy.RollingUpdate.MaxUnavailable.IntValue() != 0 {
		t.Error("rolling updates must keep every replica serving (maxUnavailable: 0)")
	}
	checkRestricted(t, "deployment", pod.Spec)
	checkVolumes(t, m, "deployment", pod.Spec)

	// Service, HPA and PDB point at this Deployment's pods and port.
	podLabels := labels.Set(pod.Labels)
	if sel, _ := metav1Selector(d.Spec.Selector.MatchLabels); !sel.Matches(podLabels) {
		t.Error("the Deployment's selector does not match its pod template")
	}
	if !labels.SelectorFromSet(m.svc.Spec.Selector).Matches(podLabels) {
		t.Error("the Service selector does not match the server pods")
	}
	if tp := m.svc.Spec.Ports[0].TargetPort; tp.String() != "http" && tp.IntValue() != int(port) {
		t.Errorf("Service targetPort %s is not the server port", tp.String())
	}
	if sel, _ := metav1Selector(m.pdb.Spec.Selector.MatchLabels); !sel.Matches(podLabels) {
		t.Error("the PodDisruptionBudget selector does not match the server pods")
	}
	ref := m.hpa.Spec.ScaleTargetRef
	if ref.Kind != "Deployment" || ref.Name != d.Name || *m.hpa.Spec.MinReplicas < 2 || *m.hpa.Spec.MinReplicas > m.hpa.Spec.MaxReplicas {
		t.Errorf("HPA targets %s/%s with min %d max %d", ref.Kind, ref.Name, *m.hpa.Spec.MinReplicas, m.hpa.Spec.MaxReplicas)
	}

	// The SLO file the merge Job reads is valid.
	if _, err := slo.Load(strings.NewReader(m.cms["delayctl-config"].Data["slo.yaml"]), "configmap slo.yaml"); err != nil {
		t.Errorf("ConfigMap slo.yaml: %v", err)
	}

	// Jobs run real bench, bench report and slo report commands.
	for _, j := range m.jobs {
		spec := j.Spec.Template.Spec
		for _, jc := range append(spec.InitContainers, spec.Containers...) {
			where := j.Name + "/" + jc.Name
			jcmd := parseCommand(t, where, expandEnv(jc.Args, jc.Env))
			if !strings.HasPrefix(jcmd.CommandPath(), "delayctl bench") && !strings.HasPrefix(jcmd.CommandPath(), "delayctl slo") {
				t.Errorf("%s runs %s", where, jcmd.CommandPath())
			}
			if u := jcmd.Flags().Lookup("url"); u != nil && u.Value.String() != "" {
				if !strings.Contains(u.Value.String(), "//"+m.svc.Name+".") && !strings.Contains(u.Value.String(), "//"+m.svc.Name+"/") {
					t.Errorf("%s --url %s does not go through Service %s", where, u.Value, m.svc.Name)
				}
			}
		}
		checkRestricted(t, j.Name, spec)
		checkVolumes(t, m, j.Name, spec)
		if spec.RestartPolicy != corev1.RestartPolicyNever {
			t.Errorf("%s: a bench pod must not restart (it would skew the run)", j.Name)
		}
	}
	bench := m.jobs[slices.IndexFunc(m.jobs, func(j *batchv1.Job) bool { return j.Spec.CompletionMode != nil })]
	if *bench.Spec.CompletionMode != batchv1.IndexedCompletion || *bench.Spec.Parallelism != *bench.Spec.Completions {
		t.Error("the bench Job must be Indexed with all pods in parallel")
	}
	if !slices.ContainsFunc(bench.Spec.Template.Spec.Containers[0].Args, func(a string) bool { return strings.Contains(a, "$(JOB_COMPLETION_INDEX)") }) {
		t.Error("each bench pod must write its own results file, named by $(JOB_COMPLETION_INDEX)")
	}
}

func metav1Selector(ml map[string]string) (labels.Selector, error) {
	return labels.SelectorFromSet(ml), nil
}

// expandEnv substitutes $(VAR) in args as the kubelet does, with JOB_COMPLETION_INDEX 0.
func expandEnv(args []string, env []corev1.EnvVar) []string {
	vals := map[string]string{"JOB_COMPLETION_INDEX": "0"}
	for _, e := range env {
		vals[e.Name] = e.Value
	}
	re := regexp.MustCompile(`\$\(([A-Z_][A-Z0-9_]*)\)`)
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = re.ReplaceAllStringFunc(a, func(m string) string {
			if v, ok := vals[m[2:len(m)-1]]; ok {
				return v
			}
			return m
		})
	}
	return out
}

// TestDockerfile checks what can be checked without a Docker engine: the build is static,
// the image runs as non-root, its default command is a valid serve invocation listening on
// the exposed port, and its health check is a valid probe of the readiness route.
func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile("../../deploy/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var entry, cmdArgs, health []string
	var user, expose string
	text := strings.ReplaceAll(string(data), "\\\n", " ")
	for _, line := range strings.Split(text, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		rest := strings.TrimSpace(strings.TrimPrefix(line, fields[0]))
		jsonArgs := func(s string) []string {
			var a []string
			if err := json.Unmarshal([]byte(s), &a); err != nil {
				t.Fatalf("%s must use the exec (JSON) form: %v", fields[0], err)
			}
			return a
		}
		switch fields[0] {
		case "ENTRYPOINT":
			entry = jsonArgs(rest)
		case "CMD":
			cmdArgs = jsonArgs(rest)
		case "HEALTHCHECK":
			health = jsonArgs(rest[strings.Index(rest, "CMD")+3:])
		case "USER":
			user = rest
		case "EXPOSE":
			expose = rest
		}
	}
	if !strings.Contains(text, "CGO_ENABLED=0") || !strings.Contains(text, "FROM scratch") {
		t.Error("the image must hold a static binary (CGO_ENABLED=0) on scratch")
	}
	// make image builds the context target from bin/image/; the source target builds in golang.
	for _, stage := range []string{"FROM runtime AS context\nCOPY bin/image/ /", "FROM runtime AS source\nCOPY --from=build /rootfs/ /"} {
		if !strings.Contains(text, stage) {
			t.Errorf("deploy/Dockerfile lacks the stage %q", stage)
		}
	}
	if user == "" || strings.HasPrefix(user, "0") || strings.HasPrefix(user, "root") {
		t.Errorf("USER %q: the image must run as non-root", user)
	}
	if len(entry) != 1 || entry[0] != "/delayctl" {
		t.Fatalf("ENTRYPOINT %v, want [/delayctl]", entry)
	}
	cmd := parseCommand(t, "Dockerfile CMD", cmdArgs)
	if cmd.Name() != "serve" {
		t.Fatalf("CMD runs %s, want serve", cmd.CommandPath())
	}
	port := portOf(t, flagString(t, cmd, "addr"))
	if expose != fmt.Sprint(port) {
		t.Errorf("EXPOSE %s but serve listens on %d", expose, port)
	}
	if len(health) < 2 || health[0] != "/delayctl" {
		t.Fatalf("HEALTHCHECK %v must run /delayctl", health)
	}
	probe := parseCommand(t, "Dockerfile HEALTHCHECK", health[1:])
	if probe.Name() != "probe" || !strings.HasSuffix(flagString(t, probe, "url"), fmt.Sprintf(":%d/readyz", port)) {
		t.Errorf("HEALTHCHECK %v must probe /readyz on port %d", health, port)
	}
}
