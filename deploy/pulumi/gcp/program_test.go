package main

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/delayctl/delayctl/deploy/pulumi/internal/mock"
	"github.com/delayctl/delayctl/deploy/pulumi/internal/servecheck"
	"github.com/delayctl/delayctl/deploy/pulumi/internal/server"
	"github.com/delayctl/delayctl/pkg/serve"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

const keyHashes = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 ci\n"

func baseConfig() map[string]string {
	return map[string]string{
		"gcp:project":           "flights",
		"gcp:region":            "europe-west1",
		"delayctl-gcp:invokers": `["serviceAccount:caller@flights.iam.gserviceaccount.com","group:sre@example.com"]`,
	}
}

// outputs are what Google computes on create: the service account's email, the service URI.
func outputs(typ, name string, in resource.PropertyMap) resource.PropertyMap {
	out := resource.PropertyMap{}
	switch typ {
	case "gcp:serviceaccount/account:Account":
		out["email"] = resource.NewStringProperty(in["accountId"].StringValue() + "@flights.iam.gserviceaccount.com")
	case "gcp:cloudrunv2/service:Service":
		out["uri"] = resource.NewStringProperty("https://delayctl-abc-ew.a.run.app")
	}
	return out
}

func strs(v any) []string {
	var out []string
	for _, e := range v.([]any) {
		out = append(out, e.(string))
	}
	return out
}

func TestProgram(t *testing.T) {
	cfg := baseConfig()
	cfg["delayctl-gcp:keyHashes"] = keyHashes
	rs := mock.MustRun(t, "delayctl-gcp", program, cfg, outputs)

	repo := mock.One(t, rs, "gcp:artifactregistry/repository:Repository")
	if repo["format"] != "DOCKER" || repo["location"] != "europe-west1" || repo["repositoryId"] != "delayctl" {
		t.Errorf("Artifact Registry repository: %v", repo)
	}
	svc := mock.One(t, rs, "gcp:cloudrunv2/service:Service")
	tpl := svc["template"]
	c := mock.Get(tpl, "containers.0")
	if got := mock.Get(c, "image"); got != "europe-west1-docker.pkg.dev/flights/delayctl/delayctl:latest" {
		t.Errorf("image %v is not in the Artifact Registry repository", got)
	}
	args := strs(mock.Get(c, "args"))
	addr := servecheck.Flag(args, "addr")
	port, _ := strconv.Atoi(addr[strings.LastIndex(addr, ":")+1:])
	if port != server.DefaultPort() || mock.Get(c, "ports.containerPort") != float64(port) {
		t.Errorf("--addr %s, container port %v, serve's default port %d: all must agree", addr, mock.Get(c, "ports.containerPort"), server.DefaultPort())
	}
	if mock.Get(c, "resources.limits.memory") != "256Mi" || mock.Get(c, "envs.0.name") != "GOMEMLIMIT" || mock.Get(c, "envs.0.value") != "204MiB" {
		t.Errorf("memory %v with %v=%v, want 256Mi and GOMEMLIMIT 204MiB", mock.Get(c, "resources.limits.memory"), mock.Get(c, "envs.0.name"), mock.Get(c, "envs.0.value"))
	}
	if mock.Get(tpl, "scaling.minInstanceCount") != 1.0 || mock.Get(tpl, "scaling.maxInstanceCount") != 10.0 || mock.Get(tpl, "maxInstanceRequestConcurrency") != 250.0 {
		t.Errorf("scaling: %v concurrency %v", mock.Get(tpl, "scaling"), mock.Get(tpl, "maxInstanceRequestConcurrency"))
	}
	if mock.Get(tpl, "serviceAccount") != "delayctl-run@flights.iam.gserviceaccount.com" || svc["deletionProtection"] != false {
		t.Errorf("service account %v, deletion protection %v", mock.Get(tpl, "serviceAccount"), svc["deletionProtection"])
	}
	probes := map[string]string{"startupProbe": server.ReadyPath, "livenessProbe": server.LivePath}
	for probe, path := range probes {
		if mock.Get(c, probe+".httpGet.path") != path || mock.Get(c, probe+".httpGet.port") != float64(port) {
			t.Errorf("%s: %v, want GET %s on %d", probe, mock.Get(c, probe), path, port)
		}
	}

	// Key hashes: a Secret Manager secret the service account may read, mounted as --auth-keys.
	version := mock.One(t, rs, "gcp:secretmanager/secretVersion:SecretVersion")
	if names, err := serve.ParseKeys(strings.NewReader(version["secretData"].(string))); err != nil || len(names) != 1 {
		t.Errorf("the key hashes secret does not parse as an --auth-keys file: %v %v", names, err)
	}
	access := mock.One(t, rs, "gcp:secretmanager/secretIamMember:SecretIamMember")
	if access["role"] != "roles/secretmanager.secretAccessor" || access["member"] != "serviceAccount:delayctl-run@flights.iam.gserviceaccount.com" || access["secretId"] != "delayctl-key-hashes" {
		t.Errorf("secret access: %v", access)
	}
	keysPath := servecheck.Flag(args, "auth-keys")
	mount := mock.Get(c, "volumeMounts.0.mountPath").(string) + "/" + mock.Get(tpl, "volumes.0.secret.items.0.path").(string)
	if keysPath != mount || mock.Get(tpl, "volumes.0.secret.secret") != "delayctl-key-hashes" || mock.Get(c, "volumeMounts.0.name") != mock.Get(tpl, "volumes.0.name") {
		t.Errorf("--auth-keys %s is not the mounted secret %s: %v", keysPath, mount, mock.Get(tpl, "volumes"))
	}

	// Only the configured callers may invoke the service.
	var members []string
	for _, r := range mock.Find(rs, "gcp:cloudrunv2/serviceIamMember:ServiceIamMember") {
		if r.Inputs["role"] != "roles/run.invoker" || r.Inputs["name"] != "delayctl" || r.Inputs["location"] != "europe-west1" {
			t.Errorf("invoker binding %s: %v", r.Name, r.Inputs)
		}
		members = append(members, r.Inputs["member"].(string))
	}
	slices.Sort(members)
	if strings.Join(members, ",") != "group:sre@example.com,serviceAccount:caller@flights.iam.gserviceaccount.com" {
		t.Errorf("invokers %v", members)
	}

	// The container's args against the real delayctl; Cloud Run kills 10 s after SIGTERM.
	envs := map[string]string{"GOMEMLIMIT": mock.Get(c, "envs.0.value").(string)}
	servecheck.CheckNames(t, args, envs)
	keys := filepath.Join(t.TempDir(), "keys.txt")
	if err := os.WriteFile(keys, []byte(keyHashes), 0o644); err != nil {
		t.Fatal(err)
	}
	s := servecheck.Start(t, args, envs, keys)
	for _, path := range probes {
		if code := s.Status(t, path); code != http.StatusOK {
			t.Errorf("GET %s: %d from the real server", path, code)
		}
	}
	if took, err := s.Stop(t, cloudRunGrace); err != nil {
		t.Errorf("SIGTERM: %v after %v\n%s", err, took, s.Log)
	}
}

func TestProgramWithoutKeys(t *testing.T) {
	rs := mock.MustRun(t, "delayctl-gcp", program, baseConfig(), outputs)
	if n := len(mock.Find(rs, "gcp:secretmanager/secret:Secret")); n != 0 {
		t.Errorf("%d secrets without keyHashes", n)
	}
	c := mock.Get(mock.One(t, rs, "gcp:cloudrunv2/service:Service")["template"], "containers.0")
	if args := strs(mock.Get(c, "args")); servecheck.Flag(args, "auth-keys") != "" {
		t.Errorf("--auth-keys without keyHashes: %v", args)
	}
}

func TestConfigErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		set  map[string]string
		want string
	}{
		"public":      {map[string]string{"invokers": `["allUsers"]`}, "would make the service public"},
		"no invokers": {map[string]string{"invokers": `[]`}, "config invokers"},
		"memory":      {map[string]string{"memory": "1Gi"}, "config memory"},
		"grace":       {map[string]string{"drainDelay": "5s", "shutdownTimeout": "5s"}, "kills an instance 10s after SIGTERM"},
		"concurrency": {map[string]string{"concurrency": "5000"}, "config concurrency 5000"},
		"instances":   {map[string]string{"minInstances": "4", "maxInstances": "2"}, "minInstances 4, maxInstances 2"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := baseConfig()
			for k, v := range tc.set {
				cfg["delayctl-gcp:"+k] = v
			}
			rs, err := mock.Run("delayctl-gcp", program, cfg, outputs)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
			if len(rs) != 0 {
				t.Errorf("%d resources declared despite the bad config", len(rs))
			}
		})
	}
}
