package check

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	sigsyaml "sigs.k8s.io/yaml"
)

const manifestDir = ".."

// kinds maps each kind the manifests use to the apiVersion this release serves and its type.
var kinds = map[string]struct {
	apiVersion string
	new        func() any
}{
	"Deployment":              {"apps/v1", func() any { return new(appsv1.Deployment) }},
	"Service":                 {"v1", func() any { return new(corev1.Service) }},
	"ConfigMap":               {"v1", func() any { return new(corev1.ConfigMap) }},
	"Secret":                  {"v1", func() any { return new(corev1.Secret) }},
	"PersistentVolumeClaim":   {"v1", func() any { return new(corev1.PersistentVolumeClaim) }},
	"HorizontalPodAutoscaler": {"autoscaling/v2", func() any { return new(autoscalingv2.HorizontalPodAutoscaler) }},
	"PodDisruptionBudget":     {"policy/v1", func() any { return new(policyv1.PodDisruptionBudget) }},
	"Job":                     {"batch/v1", func() any { return new(batchv1.Job) }},
}

// decode checks one manifest: a kind and apiVersion this release serves, and no field its
// types lack (as `kubectl apply --validate=strict` against that API server would report).
func decode(name string, data []byte) error {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := sigsyaml.Unmarshal(data, &head); err != nil {
		return err
	}
	if head.Kind == "Kustomization" {
		return nil // read by kustomize, not the API server
	}
	k, ok := kinds[head.Kind]
	if !ok {
		return &kindError{name, head.Kind, head.APIVersion}
	}
	if head.APIVersion != k.apiVersion {
		return &kindError{name, head.Kind, head.APIVersion}
	}
	return sigsyaml.UnmarshalStrict(data, k.new())
}

type kindError struct{ file, kind, apiVersion string }

func (e *kindError) Error() string {
	return e.file + ": " + e.apiVersion + " " + e.kind + " is not a kind this check knows for " + minimum()
}

// minimum is the Kubernetes minor of the k8s.io/api in this module's go.mod (v0.32.x is 1.32).
func minimum() string {
	mod, err := os.ReadFile("go.mod")
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	m := regexp.MustCompile(`(?m)^\s*k8s\.io/api v0\.(\d+)\.`).FindSubmatch(mod)
	if m == nil {
		return "unknown (no k8s.io/api in go.mod)"
	}
	return "1." + string(m[1])
}

func TestManifestsAtMinimum(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join(manifestDir, "*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no manifests in %s: %v", manifestDir, err)
	}
	t.Logf("decoding %d manifests with the Kubernetes %s API types", len(paths), minimum())
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := decode(filepath.Base(p), data); err != nil {
			t.Errorf("%s with Kubernetes %s: %v", filepath.Base(p), minimum(), err)
		}
	}
}

// TestNewerFieldFails shows the check has teeth: lifecycle.stopSignal (Kubernetes 1.33)
// added to the real Deployment is rejected.
func TestNewerFieldFails(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(manifestDir, "deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^(\s+)imagePullPolicy: .*$`)
	loc := re.FindSubmatchIndex(data)
	if loc == nil {
		t.Fatal("deployment.yaml has no imagePullPolicy line to add a field after")
	}
	indent := string(data[loc[2]:loc[3]])
	newer := string(data[:loc[1]]) + "\n" + indent + "lifecycle: {stopSignal: SIGTERM}" + string(data[loc[1]:])
	err = decode("deployment.yaml", []byte(newer))
	if err == nil || !strings.Contains(err.Error(), "stopSignal") {
		t.Errorf("a 1.33 field decoded with the %s types: %v", minimum(), err)
	}
}

// TestMinimumIsDocumented keeps docs/DEPLOY.md and this module's k8s.io/api in step.
func TestMinimumIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../../docs/DEPLOY.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`Minimum Kubernetes version: \*\*(1\.\d+)\*\*`).FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/DEPLOY.md does not state 'Minimum Kubernetes version: **1.N**'")
	}
	if string(m[1]) != minimum() {
		t.Errorf("docs/DEPLOY.md states %s, deploy/k8s/check decodes with %s", m[1], minimum())
	}
}
