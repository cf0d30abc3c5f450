package main

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/delayctl/delayctl/deploy/pulumi/internal/mock"
	"github.com/delayctl/delayctl/deploy/pulumi/internal/servecheck"
	"github.com/delayctl/delayctl/deploy/pulumi/internal/server"
	"github.com/delayctl/delayctl/pkg/serve"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// A key hashes file as `delayctl keys new` prints it.
const keyHashes = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 ci\n"

func baseConfig() map[string]string {
	return map[string]string{
		"aws:region":             "eu-west-1",
		"delayctl-aws:vpcId":     "vpc-1",
		"delayctl-aws:subnetIds": `["subnet-a","subnet-b"]`,
		"delayctl-aws:keyHashes": keyHashes,
	}
}

// outputs are what AWS computes on create: ARNs, names, the repository URL, ALB suffixes.
func outputs(typ, name string, in resource.PropertyMap) resource.PropertyMap {
	out := resource.PropertyMap{"arn": resource.NewStringProperty("arn:aws:test:::" + name)}
	if _, ok := in["name"]; !ok {
		out["name"] = resource.NewStringProperty(name)
	}
	switch typ {
	case "aws:ecr/repository:Repository":
		out["repositoryUrl"] = resource.NewStringProperty("123456789012.dkr.ecr.eu-west-1.amazonaws.com/" + name)
	case "aws:lb/loadBalancer:LoadBalancer":
		out["arnSuffix"] = resource.NewStringProperty("app/" + name + "/abc")
		out["dnsName"] = resource.NewStringProperty(name + ".eu-west-1.elb.amazonaws.com")
	case "aws:lb/targetGroup:TargetGroup":
		out["arnSuffix"] = resource.NewStringProperty("targetgroup/" + name + "/def")
	}
	return out
}

type container struct {
	Name         string   `json:"name"`
	Image        string   `json:"image"`
	Command      []string `json:"command"`
	EntryPoint   []string `json:"entryPoint"`
	User         string   `json:"user"`
	ReadOnlyRoot bool     `json:"readonlyRootFilesystem"`
	StopTimeout  int      `json:"stopTimeout"`
	PortMappings []struct {
		ContainerPort int `json:"containerPort"`
	} `json:"portMappings"`
	Environment []struct{ Name, Value string } `json:"environment"`
	Secrets     []struct {
		Name      string `json:"name"`
		ValueFrom string `json:"valueFrom"`
	} `json:"secrets"`
	DependsOn   []struct{ ContainerName, Condition string } `json:"dependsOn"`
	MountPoints []struct {
		SourceVolume  string `json:"sourceVolume"`
		ContainerPath string `json:"containerPath"`
		ReadOnly      bool   `json:"readOnly"`
	} `json:"mountPoints"`
	HealthCheck struct {
		Command []string `json:"command"`
	} `json:"healthCheck"`
	LogConfiguration struct {
		LogDriver string            `json:"logDriver"`
		Options   map[string]string `json:"options"`
	} `json:"logConfiguration"`
}

func containers(t *testing.T, task map[string]any) map[string]container {
	t.Helper()
	var cs []container
	if err := json.Unmarshal([]byte(task["containerDefinitions"].(string)), &cs); err != nil {
		t.Fatalf("containerDefinitions: %v", err)
	}
	m := map[string]container{}
	for _, c := range cs {
		m[c.Name] = c
	}
	if _, ok := m[containerName]; !ok {
		t.Fatalf("no container %s in %v", containerName, m)
	}
	return m
}

func env(c container) map[string]string {
	m := map[string]string{}
	for _, e := range c.Environment {
		m[e.Name] = e.Value
	}
	return m
}

func seconds(t *testing.T, args []string, flag string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(servecheck.Flag(args, flag))
	if err != nil {
		t.Fatalf("--%s in %v: %v", flag, args, err)
	}
	return d
}

// measuredCapacity reads the per-vCPU capacity docs/SCALING.md reports, so that the
// requests-per-target policy follows the measurement rather than a copy of it.
func measuredCapacity(t *testing.T) float64 {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join(servecheck.RepoRoot, "docs/SCALING.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`carries at least ([\d,]+) predictions per second`).FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/SCALING.md no longer states one replica's capacity ('carries at least N predictions per second')")
	}
	n, _ := strconv.Atoi(strings.ReplaceAll(string(m[1]), ",", ""))
	return float64(n)
}

func TestProgram(t *testing.T) {
	rs := mock.MustRun(t, "delayctl-aws", program, baseConfig(), outputs)

	if r := mock.One(t, rs, "aws:ecr/repository:Repository"); mock.Get(r, "imageScanningConfiguration.scanOnPush") != true || r["imageTagMutability"] != "IMMUTABLE" {
		t.Errorf("ECR repository: %v", r)
	}
	if r := mock.One(t, rs, "aws:ecs/cluster:Cluster"); mock.Get(r, "settings.0.name") != "containerInsights" || mock.Get(r, "settings.0.value") != "enabled" {
		t.Errorf("ECS cluster settings: %v", r["settings"])
	}
	logs := mock.One(t, rs, "aws:cloudwatch/logGroup:LogGroup")
	if logs["name"] != "/ecs/delayctl" || logs["retentionInDays"] != 30.0 {
		t.Errorf("log group: %v", logs)
	}
	secretVersion := mock.One(t, rs, "aws:secretsmanager/secretVersion:SecretVersion")
	if names, err := serve.ParseKeys(strings.NewReader(secretVersion["secretString"].(string))); err != nil || len(names) != 1 {
		t.Errorf("the key hashes secret does not parse as an --auth-keys file: %v %v", names, err)
	}
	secretARN := "arn:aws:test:::delayctl-key-hashes"
	mock.One(t, rs, "aws:secretsmanager/secret:Secret")

	task := mock.One(t, rs, "aws:ecs/taskDefinition:TaskDefinition")
	if task["cpu"] != "256" || task["memory"] != "512" || task["networkMode"] != "awsvpc" || mock.Get(task, "requiresCompatibilities.0") != "FARGATE" {
		t.Errorf("task definition: cpu %v memory %v network %v compat %v", task["cpu"], task["memory"], task["networkMode"], task["requiresCompatibilities"])
	}
	if task["executionRoleArn"] != "arn:aws:test:::delayctl-execution" || task["taskRoleArn"] != "arn:aws:test:::delayctl-task" {
		t.Errorf("task roles: %v %v", task["executionRoleArn"], task["taskRoleArn"])
	}
	cs := containers(t, task)
	c, fetch := cs[containerName], cs[fetchName]
	if c.Image != "123456789012.dkr.ecr.eu-west-1.amazonaws.com/delayctl:latest" {
		t.Errorf("image %s is not the ECR repository's", c.Image)
	}
	addr := servecheck.Flag(c.Command, "addr")
	port, _ := strconv.Atoi(addr[strings.LastIndex(addr, ":")+1:])
	if port != server.DefaultPort() || len(c.PortMappings) != 1 || c.PortMappings[0].ContainerPort != port {
		t.Errorf("--addr %s, port mappings %v, serve's default port %d: all must agree", addr, c.PortMappings, server.DefaultPort())
	}
	if e := env(c); e["GOMEMLIMIT"] != "409MiB" {
		t.Errorf("GOMEMLIMIT %q, want 4/5 of 512 MiB", e["GOMEMLIMIT"])
	}
	if c.User != "65532:65532" || !c.ReadOnlyRoot {
		t.Errorf("the server must run as 65532 with a read-only root: user %q read-only %v", c.User, c.ReadOnlyRoot)
	}
	drain := seconds(t, c.Command, "drain-delay") + seconds(t, c.Command, "shutdown-timeout")
	if time.Duration(c.StopTimeout)*time.Second <= drain || c.StopTimeout > 120 {
		t.Errorf("stopTimeout %ds must exceed drain-delay + shutdown-timeout %v and stay within Fargate's 120s", c.StopTimeout, drain)
	}
	if len(c.DependsOn) != 1 || c.DependsOn[0].ContainerName != fetchName || c.DependsOn[0].Condition != "SUCCESS" {
		t.Errorf("the server must start after %s succeeded: %v", fetchName, c.DependsOn)
	}
	if c.LogConfiguration.LogDriver != "awslogs" || c.LogConfiguration.Options["awslogs-group"] != "/ecs/delayctl" || c.LogConfiguration.Options["awslogs-region"] != "eu-west-1" {
		t.Errorf("server logs: %v", c.LogConfiguration)
	}
	// The key hashes reach the server as the --auth-keys file, written by fetch from the secret.
	keysPath := servecheck.Flag(c.Command, "auth-keys")
	if len(fetch.Secrets) != 1 || fetch.Secrets[0].ValueFrom != secretARN || !strings.Contains(fetch.Command[0], "$"+fetch.Secrets[0].Name+`" >`+keysPath) {
		t.Errorf("fetch must write secret %s to %s: secrets %v command %v", secretARN, keysPath, fetch.Secrets, fetch.Command)
	}
	if servecheck.Flag(c.Command, "model") != bakedModel {
		t.Errorf("without modelS3Uri the model is baked in at %s, not %s", bakedModel, servecheck.Flag(c.Command, "model"))
	}
	for name, ct := range map[string]container{"server": c, "fetch": fetch} {
		want := name == "server"
		if len(ct.MountPoints) != 1 || ct.MountPoints[0].ContainerPath != runDir || ct.MountPoints[0].ReadOnly != want {
			t.Errorf("%s must mount %s (read-only %v): %v", name, runDir, want, ct.MountPoints)
		}
	}
	if p := mock.Named(t, rs, "aws:iam/rolePolicy:RolePolicy", "delayctl-execution-keys"); !strings.Contains(p["policy"].(string), secretARN) {
		t.Errorf("the execution role cannot read the key hashes: %v", p["policy"])
	}

	// The target group's health check and the container's are the readiness route, and the
	// deregistration delay covers drain and shutdown.
	tg := mock.One(t, rs, "aws:lb/targetGroup:TargetGroup")
	if mock.Get(tg, "healthCheck.path") != server.ReadyPath || mock.Get(tg, "healthCheck.matcher") != "200" || tg["targetType"] != "ip" || tg["port"] != float64(port) {
		t.Errorf("target group: %v", tg)
	}
	if d := time.Duration(tg["deregistrationDelay"].(float64)) * time.Second; d < drain {
		t.Errorf("deregistration delay %v is shorter than drain-delay + shutdown-timeout %v", d, drain)
	}
	probeURL := fmt.Sprintf("http://127.0.0.1:%d%s", port, server.ReadyPath)
	if hc := c.HealthCheck.Command; len(hc) < 2 || hc[0] != "CMD" || hc[1] != "/delayctl" || servecheck.Flag(hc, "url") != probeURL {
		t.Errorf("container health check %v must run delayctl probe --url %s", hc, probeURL)
	}

	// Only the ALB reaches the tasks.
	albSG := mock.Named(t, rs, "aws:ec2/securityGroup:SecurityGroup", "delayctl-alb")
	taskSG := mock.Named(t, rs, "aws:ec2/securityGroup:SecurityGroup", "delayctl-task")
	if in := mock.Get(taskSG, "ingress").([]any); len(in) != 1 || mock.Get(in[0], "securityGroups.0") != "delayctl-alb-id" ||
		mock.Get(in[0], "cidrBlocks") != nil || mock.Get(in[0], "fromPort") != float64(port) || mock.Get(in[0], "toPort") != float64(port) {
		t.Errorf("task security group must admit only the ALB's group on port %d: %v", port, in)
	}
	if mock.Get(albSG, "ingress.0.fromPort") != 80.0 || mock.Get(albSG, "ingress.0.cidrBlocks.0") != "0.0.0.0/0" {
		t.Errorf("ALB security group: %v", albSG["ingress"])
	}
	alb := mock.One(t, rs, "aws:lb/loadBalancer:LoadBalancer")
	if alb["loadBalancerType"] != "application" || len(alb["subnets"].([]any)) != 2 || mock.Get(alb, "securityGroups.0") != "delayctl-alb-id" {
		t.Errorf("load balancer: %v", alb)
	}
	if l := mock.One(t, rs, "aws:lb/listener:Listener"); l["port"] != 80.0 || l["protocol"] != "HTTP" ||
		mock.Get(l, "defaultActions.0.type") != "forward" || mock.Get(l, "defaultActions.0.targetGroupArn") != "arn:aws:test:::delayctl" {
		t.Errorf("listener: %v", l)
	}

	svc := mock.One(t, rs, "aws:ecs/service:Service")
	if svc["launchType"] != "FARGATE" || svc["desiredCount"] != 2.0 || mock.Get(svc, "networkConfiguration.securityGroups.0") != "delayctl-task-id" ||
		mock.Get(svc, "loadBalancers.0.containerName") != containerName || mock.Get(svc, "loadBalancers.0.containerPort") != float64(port) ||
		mock.Get(svc, "deploymentMinimumHealthyPercent") != 100.0 || mock.Get(svc, "deploymentCircuitBreaker.rollback") != true {
		t.Errorf("service: %v", svc)
	}

	// Autoscaling: CPU at 60 %, and requests per target from the measured capacity.
	target := mock.One(t, rs, "aws:appautoscaling/target:Target")
	if target["resourceId"] != "service/delayctl/delayctl" || target["minCapacity"] != 2.0 || target["maxCapacity"] != 10.0 ||
		target["scalableDimension"] != "ecs:service:DesiredCount" {
		t.Errorf("scaling target: %v", target)
	}
	cpu := mock.Named(t, rs, "aws:appautoscaling/policy:Policy", "delayctl-cpu")
	req := mock.Named(t, rs, "aws:appautoscaling/policy:Policy", "delayctl-requests")
	if mock.Get(cpu, "targetTrackingScalingPolicyConfiguration.predefinedMetricSpecification.predefinedMetricType") != "ECSServiceAverageCPUUtilization" ||
		mock.Get(cpu, "targetTrackingScalingPolicyConfiguration.targetValue") != 60.0 {
		t.Errorf("CPU policy: %v", cpu)
	}
	wantReq := math.Floor(measuredCapacity(t) * 256 / 1024 * 0.6 * 60)
	if mock.Get(req, "targetTrackingScalingPolicyConfiguration.predefinedMetricSpecification.predefinedMetricType") != "ALBRequestCountPerTarget" ||
		mock.Get(req, "targetTrackingScalingPolicyConfiguration.targetValue") != wantReq ||
		mock.Get(req, "targetTrackingScalingPolicyConfiguration.predefinedMetricSpecification.resourceLabel") != "app/delayctl/abc/targetgroup/delayctl/def" {
		t.Errorf("requests policy (want target %v per minute): %v", wantReq, req)
	}

	// The container's command against the real delayctl: flags and variables exist, the
	// server starts with them, answers the probe paths, and stops within stopTimeout.
	servecheck.CheckNames(t, c.Command, env(c))
	keys := filepath.Join(t.TempDir(), "keys.txt")
	if err := os.WriteFile(keys, []byte(keyHashes), 0o644); err != nil {
		t.Fatal(err)
	}
	s := servecheck.Start(t, c.Command, env(c), keys)
	for _, path := range []string{server.ReadyPath, mock.Get(tg, "healthCheck.path").(string)} {
		if code := s.Status(t, path); code != http.StatusOK {
			t.Errorf("GET %s: %d from the real server", path, code)
		}
	}
	if code := s.Status(t, "/predict"); code != http.StatusUnauthorized {
		t.Errorf("GET /predict without a key: %d, want 401 (--auth-keys is on)", code)
	}
	took, err := s.Stop(t, time.Duration(c.StopTimeout)*time.Second)
	if err != nil {
		t.Errorf("SIGTERM: %v after %v\n%s", err, took, s.Log)
	}
}

func TestProgramModelFromS3AndHTTPS(t *testing.T) {
	cfg := baseConfig()
	cfg["delayctl-aws:modelS3Uri"] = "s3://models/flight-delay/model.json"
	cfg["delayctl-aws:certificateArn"] = "arn:aws:acm:eu-west-1:123456789012:certificate/x"
	cfg["delayctl-aws:cpu"] = "1024"
	cfg["delayctl-aws:memory"] = "2048"
	rs := mock.MustRun(t, "delayctl-aws", program, cfg, outputs)
	cs := containers(t, mock.One(t, rs, "aws:ecs/taskDefinition:TaskDefinition"))
	c, fetch := cs[containerName], cs[fetchName]
	model := servecheck.Flag(c.Command, "model")
	if model != runDir+"/model.json" || !strings.Contains(fetch.Command[0], `aws s3 cp --only-show-errors "$MODEL_S3_URI" `+model) || env(fetch)["MODEL_S3_URI"] != cfg["delayctl-aws:modelS3Uri"] {
		t.Errorf("the model must be fetched from S3 to --model %s: %v %v", model, fetch.Command, fetch.Environment)
	}
	if p := mock.Named(t, rs, "aws:iam/rolePolicy:RolePolicy", "delayctl-task-model"); !strings.Contains(p["policy"].(string), "arn:aws:s3:::models/flight-delay/model.json") {
		t.Errorf("task role policy: %v", p["policy"])
	}
	if e := env(c); e["GOMEMLIMIT"] != "1638MiB" {
		t.Errorf("GOMEMLIMIT %q for 2048 MiB", e["GOMEMLIMIT"])
	}
	if l := mock.One(t, rs, "aws:lb/listener:Listener"); l["port"] != 443.0 || l["protocol"] != "HTTPS" || l["certificateArn"] != cfg["delayctl-aws:certificateArn"] {
		t.Errorf("HTTPS listener: %v", l)
	}
	if sg := mock.Named(t, rs, "aws:ec2/securityGroup:SecurityGroup", "delayctl-alb"); mock.Get(sg, "ingress.0.fromPort") != 443.0 {
		t.Errorf("ALB security group must open 443: %v", sg["ingress"])
	}
	req := mock.Named(t, rs, "aws:appautoscaling/policy:Policy", "delayctl-requests")
	if got, want := mock.Get(req, "targetTrackingScalingPolicyConfiguration.targetValue"), math.Floor(measuredCapacity(t)*0.6*60); got != want {
		t.Errorf("requests per target with 1 vCPU: %v, want %v", got, want)
	}
}

func TestConfigErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		set  map[string]string
		want string
	}{
		"cpu":        {map[string]string{"cpu": "300"}, "config cpu 300"},
		"memory":     {map[string]string{"cpu": "1024", "memory": "512"}, "config memory 512 MiB"},
		"one subnet": {map[string]string{"subnetIds": `["subnet-a"]`}, "at least two availability zones"},
		"drain":      {map[string]string{"drainDelay": "60s", "shutdownTimeout": "60s"}, "drainDelay + shutdownTimeout"},
		"duration":   {map[string]string{"drainDelay": "5"}, "config drainDelay"},
		"s3 uri":     {map[string]string{"modelS3Uri": "https://x/model.json"}, "config modelS3Uri"},
		"tasks":      {map[string]string{"minTasks": "5", "maxTasks": "3"}, "minTasks 5, maxTasks 3"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := baseConfig()
			for k, v := range tc.set {
				cfg["delayctl-aws:"+k] = v
			}
			rs, err := mock.Run("delayctl-aws", program, cfg, outputs)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
			if len(rs) != 0 {
				t.Errorf("%d resources declared despite the bad config", len(rs))
			}
		})
	}
}
