package main

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/delayctl/delayctl/deploy/pulumi/internal/server"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/appautoscaling"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/cloudwatch"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ec2"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ecr"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ecs"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/iam"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/lb"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/secretsmanager"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"
)

// Defaults of the stack configuration (docs/DEPLOY.md lists every key).
const (
	// One vCPU carries at least 22,000 predictions per second within the SLO
	// (docs/SCALING.md); the requests-per-target policy scales a task's share of it.
	defaultCapacityPerVCPU = 22000
	defaultTargetCPU       = 60
	defaultCPU             = 256 // the seeds' smallest Fargate size: about 5,500 req/s
	defaultMemory          = 512
	defaultMinTasks        = 2
	defaultMaxTasks        = 10
	// The ALB stops routing to a deregistered target at once; the drain delay covers
	// requests already on their way, the shutdown timeout those in flight.
	defaultDrainDelay      = 5 * time.Second
	defaultShutdownTimeout = 20 * time.Second
	defaultFetchImage      = "public.ecr.aws/aws-cli/aws-cli:latest"
	containerName          = "delayctl"
	fetchName              = "fetch"
	runDir                 = "/run/delayctl" // written by the fetch container, read-only to the server
	bakedModel             = "/models/model.json"
)

// settings is the stack configuration, read and checked before any resource is declared.
type settings struct {
	vpcID, region, image, imageTag, modelS3URI, certificateARN, fetchImage string
	subnetIDs, allowedCIDRs                                                []string
	cpu, memory, minTasks, maxTasks, capacityPerVCPU, targetCPU            int
	serve                                                                  server.Serve
}

func readSettings(ctx *pulumi.Context) (settings, error) {
	c := config.New(ctx, "")
	s := settings{
		vpcID:           c.Require("vpcId"),
		region:          config.New(ctx, "aws").Require("region"),
		image:           c.Get("image"),
		imageTag:        server.Or(c.Get("imageTag"), "latest"),
		modelS3URI:      c.Get("modelS3Uri"),
		certificateARN:  c.Get("certificateArn"),
		fetchImage:      server.Or(c.Get("fetchImage"), defaultFetchImage),
		cpu:             server.Or(c.GetInt("cpu"), defaultCPU),
		memory:          server.Or(c.GetInt("memory"), defaultMemory),
		minTasks:        server.Or(c.GetInt("minTasks"), defaultMinTasks),
		maxTasks:        server.Or(c.GetInt("maxTasks"), defaultMaxTasks),
		capacityPerVCPU: server.Or(c.GetInt("capacityPerVcpu"), defaultCapacityPerVCPU),
		targetCPU:       server.Or(c.GetInt("targetCpuPercent"), defaultTargetCPU),
		allowedCIDRs:    []string{"0.0.0.0/0"},
	}
	c.RequireObject("subnetIds", &s.subnetIDs)
	if err := c.TryObject("allowedCidrs", &s.allowedCIDRs); err != nil && c.Get("allowedCidrs") != "" {
		return s, fmt.Errorf("config allowedCidrs: %w", err)
	}
	drain, err := server.Duration(c, "drainDelay", defaultDrainDelay)
	if err != nil {
		return s, err
	}
	shutdown, err := server.Duration(c, "shutdownTimeout", defaultShutdownTimeout)
	if err != nil {
		return s, err
	}
	model := bakedModel
	if s.modelS3URI != "" {
		model = runDir + "/model.json"
	}
	s.serve = server.Serve{Port: server.DefaultPort(), ModelPath: model, AuthKeysPath: runDir + "/keys.txt",
		DrainDelay: drain, ShutdownTimeout: shutdown}
	if err := fargateSize(s.cpu, s.memory); err != nil {
		return s, err
	}
	if s.modelS3URI != "" && !strings.HasPrefix(s.modelS3URI, "s3://") {
		return s, fmt.Errorf("config modelS3Uri %q: want s3://bucket/key", s.modelS3URI)
	}
	if len(s.subnetIDs) < 2 {
		return s, fmt.Errorf("config subnetIds: an ALB needs subnets in at least two availability zones, got %d", len(s.subnetIDs))
	}
	if s.minTasks < 1 || s.maxTasks < s.minTasks {
		return s, fmt.Errorf("config minTasks %d, maxTasks %d: want 1 <= minTasks <= maxTasks", s.minTasks, s.maxTasks)
	}
	// ECS gives a container at most 120 s between SIGTERM and SIGKILL on Fargate.
	if stop := s.serve.StopWithin(); stop > 120*time.Second {
		return s, fmt.Errorf("config drainDelay + shutdownTimeout = %v: Fargate allows at most 115s plus the exit margin", stop-5*time.Second)
	}
	return s, nil
}

// fargateSize rejects CPU and memory pairs that Fargate does not offer.
func fargateSize(cpu, memory int) error {
	ranges := map[int][2]int{256: {512, 2048}, 512: {1024, 4096}, 1024: {2048, 8192}, 2048: {4096, 16384}, 4096: {8192, 30720}}
	r, ok := ranges[cpu]
	if !ok {
		return fmt.Errorf("config cpu %d: Fargate offers 256, 512, 1024, 2048 or 4096 CPU units", cpu)
	}
	if memory < r[0] || memory > r[1] || (memory != 512 && memory%1024 != 0) {
		return fmt.Errorf("config memory %d MiB: with cpu %d Fargate offers %d to %d MiB in 1024 MiB steps", memory, cpu, r[0], r[1])
	}
	return nil
}

// requestsPerTarget is the ALBRequestCountPerTarget target (requests per target per minute):
// the task's share of a vCPU's measured capacity at the CPU policy's target utilisation.
func requestsPerTarget(s settings) float64 {
	return math.Floor(float64(s.capacityPerVCPU) * float64(s.cpu) / 1024 * float64(s.targetCPU) / 100 * 60)
}

func program(ctx *pulumi.Context) error {
	s, err := readSettings(ctx)
	if err != nil {
		return err
	}
	port := s.serve.Port

	repo, err := ecr.NewRepository(ctx, "delayctl", &ecr.RepositoryArgs{
		ImageScanningConfiguration: &ecr.RepositoryImageScanningConfigurationArgs{ScanOnPush: pulumi.Bool(true)},
		ImageTagMutability:         pulumi.String("IMMUTABLE"),
	})
	if err != nil {
		return err
	}
	image := pulumi.String(s.image).ToStringOutput()
	if s.image == "" {
		image = pulumi.Sprintf("%s:%s", repo.RepositoryUrl, s.imageTag)
	}
	cluster, err := ecs.NewCluster(ctx, "delayctl", &ecs.ClusterArgs{
		Settings: ecs.ClusterSettingArray{ecs.ClusterSettingArgs{Name: pulumi.String("containerInsights"), Value: pulumi.String("enabled")}},
	})
	if err != nil {
		return err
	}
	logs, err := cloudwatch.NewLogGroup(ctx, "delayctl", &cloudwatch.LogGroupArgs{
		Name: pulumi.String("/ecs/delayctl"), RetentionInDays: pulumi.Int(30),
	})
	if err != nil {
		return err
	}
	keys, err := secretsmanager.NewSecret(ctx, "delayctl-key-hashes", &secretsmanager.SecretArgs{
		Description: pulumi.String("delayctl serve --auth-keys file: one SHA-256 key hash per line (delayctl keys new)"),
	})
	if err != nil {
		return err
	}
	if _, err := secretsmanager.NewSecretVersion(ctx, "delayctl-key-hashes", &secretsmanager.SecretVersionArgs{
		SecretId: keys.ID(), SecretString: config.New(ctx, "").RequireSecret("keyHashes"),
	}); err != nil {
		return err
	}

	// Only the ALB reaches the tasks, and only on the server's port.
	albSG, err := ec2.NewSecurityGroup(ctx, "delayctl-alb", &ec2.SecurityGroupArgs{
		VpcId:       pulumi.String(s.vpcID),
		Description: pulumi.String("delayctl load balancer: HTTP(S) from the allowed CIDRs"),
		Ingress: ec2.SecurityGroupIngressArray{ec2.SecurityGroupIngressArgs{
			Protocol: pulumi.String("tcp"), FromPort: pulumi.Int(listenerPort(s)), ToPort: pulumi.Int(listenerPort(s)),
			CidrBlocks: pulumi.ToStringArray(s.allowedCIDRs),
		}},
		Egress: allEgress(),
	})
	if err != nil {
		return err
	}
	taskSG, err := ec2.NewSecurityGroup(ctx, "delayctl-task", &ec2.SecurityGroupArgs{
		VpcId:       pulumi.String(s.vpcID),
		Description: pulumi.String("delayctl tasks: the server port from the load balancer only"),
		Ingress: ec2.SecurityGroupIngressArray{ec2.SecurityGroupIngressArgs{
			Protocol: pulumi.String("tcp"), FromPort: pulumi.Int(port), ToPort: pulumi.Int(port),
			SecurityGroups: pulumi.StringArray{albSG.ID()},
		}},
		Egress: allEgress(), // ECR, S3, Secrets Manager and CloudWatch Logs
	})
	if err != nil {
		return err
	}

	alb, err := lb.NewLoadBalancer(ctx, "delayctl", &lb.LoadBalancerArgs{
		LoadBalancerType: pulumi.String("application"),
		SecurityGroups:   pulumi.StringArray{albSG.ID()},
		Subnets:          pulumi.ToStringArray(s.subnetIDs),
	})
	if err != nil {
		return err
	}
	stopWithin := int(math.Ceil(s.serve.StopWithin().Seconds()))
	tg, err := lb.NewTargetGroup(ctx, "delayctl", &lb.TargetGroupArgs{
		Port: pulumi.Int(port), Protocol: pulumi.String("HTTP"), TargetType: pulumi.String("ip"),
		VpcId: pulumi.String(s.vpcID),
		// ECS waits this long after deregistering a task before it sends SIGTERM; it covers
		// the server's drain and shutdown so no connection is cut.
		DeregistrationDelay: pulumi.Int(stopWithin),
		HealthCheck: &lb.TargetGroupHealthCheckArgs{
			Path: pulumi.String(server.ReadyPath), Matcher: pulumi.String("200"), Port: pulumi.String("traffic-port"),
			Interval: pulumi.Int(5), Timeout: pulumi.Int(2), HealthyThreshold: pulumi.Int(2), UnhealthyThreshold: pulumi.Int(2),
		},
	})
	if err != nil {
		return err
	}
	listener := &lb.ListenerArgs{
		LoadBalancerArn: alb.Arn, Port: pulumi.Int(listenerPort(s)), Protocol: pulumi.String("HTTP"),
		DefaultActions: lb.ListenerDefaultActionArray{lb.ListenerDefaultActionArgs{Type: pulumi.String("forward"), TargetGroupArn: tg.Arn}},
	}
	if s.certificateARN != "" {
		listener.Protocol = pulumi.String("HTTPS")
		listener.CertificateArn = pulumi.String(s.certificateARN)
		listener.SslPolicy = pulumi.String("ELBSecurityPolicy-TLS13-1-2-2021-06")
	}
	if _, err := lb.NewListener(ctx, "delayctl", listener); err != nil {
		return err
	}

	execRole, err := iam.NewRole(ctx, "delayctl-execution", &iam.RoleArgs{AssumeRolePolicy: pulumi.String(ecsTasksTrust)})
	if err != nil {
		return err
	}
	if _, err := iam.NewRolePolicyAttachment(ctx, "delayctl-execution", &iam.RolePolicyAttachmentArgs{
		Role: execRole.Name, PolicyArn: pulumi.String("arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"),
	}); err != nil {
		return err
	}
	if _, err := iam.NewRolePolicy(ctx, "delayctl-execution-keys", &iam.RolePolicyArgs{
		Role:   execRole.Name,
		Policy: keys.Arn.ApplyT(func(arn string) (string, error) { return policy("secretsmanager:GetSecretValue", arn) }).(pulumi.StringOutput),
	}); err != nil {
		return err
	}
	taskRole, err := iam.NewRole(ctx, "delayctl-task", &iam.RoleArgs{AssumeRolePolicy: pulumi.String(ecsTasksTrust)})
	if err != nil {
		return err
	}
	if s.modelS3URI != "" {
		p, err := policy("s3:GetObject", s3ObjectARN(s.modelS3URI))
		if err != nil {
			return err
		}
		if _, err := iam.NewRolePolicy(ctx, "delayctl-task-model", &iam.RolePolicyArgs{Role: taskRole.Name, Policy: pulumi.String(p)}); err != nil {
			return err
		}
	}

	defs := pulumi.All(image, logs.Name, keys.Arn).ApplyT(func(a []any) (string, error) {
		return containerDefinitions(s, a[0].(string), a[1].(string), a[2].(string))
	}).(pulumi.StringOutput)
	task, err := ecs.NewTaskDefinition(ctx, "delayctl", &ecs.TaskDefinitionArgs{
		Family: pulumi.String("delayctl"), Cpu: pulumi.String(strconv.Itoa(s.cpu)), Memory: pulumi.String(strconv.Itoa(s.memory)),
		NetworkMode: pulumi.String("awsvpc"), RequiresCompatibilities: pulumi.StringArray{pulumi.String("FARGATE")},
		RuntimePlatform: &ecs.TaskDefinitionRuntimePlatformArgs{
			OperatingSystemFamily: pulumi.String("LINUX"), CpuArchitecture: pulumi.String("X86_64"),
		},
		ExecutionRoleArn: execRole.Arn, TaskRoleArn: taskRole.Arn,
		Volumes:              ecs.TaskDefinitionVolumeArray{ecs.TaskDefinitionVolumeArgs{Name: pulumi.String("run")}},
		ContainerDefinitions: defs,
	})
	if err != nil {
		return err
	}
	svc, err := ecs.NewService(ctx, "delayctl", &ecs.ServiceArgs{
		Cluster: cluster.Arn, TaskDefinition: task.Arn, LaunchType: pulumi.String("FARGATE"),
		DesiredCount: pulumi.Int(s.minTasks),
		// A rollout starts new tasks before it stops old ones, and rolls back if they never get healthy.
		DeploymentMinimumHealthyPercent: pulumi.Int(100), DeploymentMaximumPercent: pulumi.Int(200),
		DeploymentCircuitBreaker:      &ecs.ServiceDeploymentCircuitBreakerArgs{Enable: pulumi.Bool(true), Rollback: pulumi.Bool(true)},
		HealthCheckGracePeriodSeconds: pulumi.Int(30),
		NetworkConfiguration: &ecs.ServiceNetworkConfigurationArgs{
			Subnets: pulumi.ToStringArray(s.subnetIDs), SecurityGroups: pulumi.StringArray{taskSG.ID()},
			AssignPublicIp: pulumi.Bool(true), // to pull from ECR without a NAT gateway; the security group admits only the ALB
		},
		LoadBalancers: ecs.ServiceLoadBalancerArray{ecs.ServiceLoadBalancerArgs{
			TargetGroupArn: tg.Arn, ContainerName: pulumi.String(containerName), ContainerPort: pulumi.Int(port),
		}},
	}, pulumi.DependsOn([]pulumi.Resource{tg}))
	if err != nil {
		return err
	}

	target, err := appautoscaling.NewTarget(ctx, "delayctl", &appautoscaling.TargetArgs{
		ServiceNamespace: pulumi.String("ecs"), ScalableDimension: pulumi.String("ecs:service:DesiredCount"),
		ResourceId:  pulumi.Sprintf("service/%s/%s", cluster.Name, svc.Name),
		MinCapacity: pulumi.Int(s.minTasks), MaxCapacity: pulumi.Int(s.maxTasks),
	})
	if err != nil {
		return err
	}
	scale := func(name, metric string, value float64, label pulumi.StringPtrInput) error {
		_, err := appautoscaling.NewPolicy(ctx, name, &appautoscaling.PolicyArgs{
			PolicyType: pulumi.String("TargetTrackingScaling"),
			ResourceId: target.ResourceId, ScalableDimension: target.ScalableDimension, ServiceNamespace: target.ServiceNamespace,
			TargetTrackingScalingPolicyConfiguration: &appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs{
				TargetValue: pulumi.Float64(value),
				PredefinedMetricSpecification: &appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs{
					PredefinedMetricType: pulumi.String(metric), ResourceLabel: label,
				},
				ScaleOutCooldown: pulumi.Int(30), ScaleInCooldown: pulumi.Int(300),
			},
		})
		return err
	}
	if err := scale("delayctl-cpu", "ECSServiceAverageCPUUtilization", float64(s.targetCPU), nil); err != nil {
		return err
	}
	if err := scale("delayctl-requests", "ALBRequestCountPerTarget", requestsPerTarget(s),
		pulumi.Sprintf("%s/%s", alb.ArnSuffix, tg.ArnSuffix)); err != nil {
		return err
	}

	scheme := "http"
	if s.certificateARN != "" {
		scheme = "https"
	}
	ctx.Export("url", pulumi.Sprintf("%s://%s", scheme, alb.DnsName))
	ctx.Export("repositoryUrl", repo.RepositoryUrl)
	ctx.Export("image", image)
	ctx.Export("keyHashesSecret", keys.Arn)
	ctx.Export("logGroup", logs.Name)
	return nil
}

// containerDefinitions is the task's two containers: fetch writes the key hashes (from
// Secrets Manager, injected by ECS) and, with modelS3Uri, the model into a task volume and
// exits; delayctl then serves with a read-only root and that volume mounted read-only.
func containerDefinitions(s settings, image, logGroup, keysARN string) (string, error) {
	logConfig := func(prefix string) map[string]any {
		return map[string]any{"logDriver": "awslogs", "options": map[string]string{
			"awslogs-group": logGroup, "awslogs-region": s.region, "awslogs-stream-prefix": prefix}}
	}
	script := `set -eu; umask 022; printf '%s\n' "$KEY_HASHES" >` + runDir + `/keys.txt`
	env := []map[string]string{}
	if s.modelS3URI != "" {
		script += `; aws s3 cp --only-show-errors "$MODEL_S3_URI" ` + runDir + `/model.json`
		env = append(env, map[string]string{"name": "MODEL_S3_URI", "value": s.modelS3URI})
	}
	fetch := map[string]any{
		"name": fetchName, "image": s.fetchImage, "essential": false,
		"entryPoint": []string{"/bin/sh", "-c"}, "command": []string{script},
		"environment":      env,
		"secrets":          []map[string]string{{"name": "KEY_HASHES", "valueFrom": keysARN}},
		"mountPoints":      []map[string]any{{"sourceVolume": "run", "containerPath": runDir, "readOnly": false}},
		"logConfiguration": logConfig(fetchName),
	}
	serve := map[string]any{
		"name": containerName, "image": image, "essential": true,
		"command":      s.serve.Args(),
		"portMappings": []map[string]any{{"containerPort": s.serve.Port, "protocol": "tcp"}},
		"environment":  []map[string]string{{"name": "GOMEMLIMIT", "value": server.GoMemLimit(s.memory)}},
		"user":         "65532:65532", "readonlyRootFilesystem": true,
		"stopTimeout": int(math.Ceil(s.serve.StopWithin().Seconds())),
		"dependsOn":   []map[string]string{{"containerName": fetchName, "condition": "SUCCESS"}},
		"mountPoints": []map[string]any{{"sourceVolume": "run", "containerPath": runDir, "readOnly": true}},
		"healthCheck": map[string]any{
			"command":  []string{"CMD", "/delayctl", "probe", "--url", fmt.Sprintf("http://127.0.0.1:%d%s", s.serve.Port, server.ReadyPath)},
			"interval": 10, "timeout": 3, "retries": 3, "startPeriod": 10,
		},
		"logConfiguration": logConfig(containerName),
	}
	b, err := json.Marshal([]any{fetch, serve})
	return string(b), err
}

const ecsTasksTrust = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}`

func policy(action, resource string) (string, error) {
	b, err := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": []map[string]string{
		{"Effect": "Allow", "Action": action, "Resource": resource}}})
	return string(b), err
}

// s3ObjectARN turns s3://bucket/key into arn:aws:s3:::bucket/key.
func s3ObjectARN(uri string) string {
	return "arn:aws:s3:::" + strings.TrimPrefix(uri, "s3://")
}

func listenerPort(s settings) int {
	if s.certificateARN != "" {
		return 443
	}
	return 80
}

func allEgress() ec2.SecurityGroupEgressArray {
	return ec2.SecurityGroupEgressArray{ec2.SecurityGroupEgressArgs{
		Protocol: pulumi.String("-1"), FromPort: pulumi.Int(0), ToPort: pulumi.Int(0), CidrBlocks: pulumi.StringArray{pulumi.String("0.0.0.0/0")},
	}}
}
