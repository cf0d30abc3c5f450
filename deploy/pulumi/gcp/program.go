package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/delayctl/delayctl/deploy/pulumi/internal/server"
	"github.com/pulumi/pulumi-gcp/sdk/v9/go/gcp/artifactregistry"
	"github.com/pulumi/pulumi-gcp/sdk/v9/go/gcp/cloudrunv2"
	"github.com/pulumi/pulumi-gcp/sdk/v9/go/gcp/secretmanager"
	"github.com/pulumi/pulumi-gcp/sdk/v9/go/gcp/serviceaccount"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"
)

// Defaults of the stack configuration (docs/DEPLOY.md lists every key).
const (
	defaultMemory = "256Mi" // the seeds' memory SLO
	defaultCPU    = "1"
	// One instance at 60 % of its measured capacity (docs/SCALING.md) answers about 13,000
	// req/s; at a few milliseconds each that is well under a hundred requests at once, so 250
	// leaves room for slow clients while Cloud Run still scales out before the cliff.
	defaultConcurrency  = 250
	defaultMinInstances = 1 // a warm instance: a cold start would cost the first callers the SLO
	defaultMaxInstances = 10
	// Cloud Run sends SIGKILL 10 s after SIGTERM, and stops routing to an instance before
	// SIGTERM: no drain delay is needed, and in-flight requests get 8 s.
	defaultDrainDelay      = 0
	defaultShutdownTimeout = 8 * time.Second
	cloudRunGrace          = 10 * time.Second
	keysDir                = "/etc/delayctl/keys"
	bakedModel             = "/models/model.json"
)

type settings struct {
	project, region, image, imageTag, memory, cpu string
	invokers                                      []string
	minInstances, maxInstances, concurrency       int
	memMiB                                        int
	keys                                          bool
	serve                                         server.Serve
}

func readSettings(ctx *pulumi.Context) (settings, error) {
	c, g := config.New(ctx, ""), config.New(ctx, "gcp")
	s := settings{
		project:      g.Require("project"),
		region:       g.Require("region"),
		image:        c.Get("image"),
		imageTag:     server.Or(c.Get("imageTag"), "latest"),
		memory:       server.Or(c.Get("memory"), defaultMemory),
		cpu:          server.Or(c.Get("cpu"), defaultCPU),
		minInstances: server.Or(c.GetInt("minInstances"), defaultMinInstances),
		maxInstances: server.Or(c.GetInt("maxInstances"), defaultMaxInstances),
		concurrency:  server.Or(c.GetInt("concurrency"), defaultConcurrency),
		keys:         c.Get("keyHashes") != "",
	}
	c.RequireObject("invokers", &s.invokers)
	drain, err := server.Duration(c, "drainDelay", defaultDrainDelay)
	if err != nil {
		return s, err
	}
	shutdown, err := server.Duration(c, "shutdownTimeout", defaultShutdownTimeout)
	if err != nil {
		return s, err
	}
	s.serve = server.Serve{Port: server.DefaultPort(), ModelPath: bakedModel, DrainDelay: drain, ShutdownTimeout: shutdown}
	if s.keys {
		s.serve.AuthKeysPath = keysDir + "/keys.txt"
	}
	mem, ok := strings.CutSuffix(s.memory, "Mi")
	if s.memMiB, err = strconv.Atoi(mem); !ok || err != nil || s.memMiB < 128 {
		return s, fmt.Errorf("config memory %q: want MiB such as 256Mi (at least 128Mi)", s.memory)
	}
	if len(s.invokers) == 0 {
		return s, fmt.Errorf("config invokers: name the identities allowed to call the service (user:..., serviceAccount:..., group:...)")
	}
	for _, m := range s.invokers {
		if m == "allUsers" || m == "allAuthenticatedUsers" {
			return s, fmt.Errorf("config invokers: %s would make the service public; seed 001 required a bearer token", m)
		}
	}
	if s.minInstances < 0 || s.maxInstances < 1 || s.maxInstances < s.minInstances {
		return s, fmt.Errorf("config minInstances %d, maxInstances %d: want 0 <= minInstances <= maxInstances, maxInstances >= 1", s.minInstances, s.maxInstances)
	}
	if s.concurrency < 1 || s.concurrency > 1000 {
		return s, fmt.Errorf("config concurrency %d: Cloud Run allows 1 to 1000", s.concurrency)
	}
	if drain+shutdown >= cloudRunGrace {
		return s, fmt.Errorf("config drainDelay + shutdownTimeout = %v: Cloud Run kills an instance %v after SIGTERM", drain+shutdown, cloudRunGrace)
	}
	return s, nil
}

func program(ctx *pulumi.Context) error {
	s, err := readSettings(ctx)
	if err != nil {
		return err
	}
	repo, err := artifactregistry.NewRepository(ctx, "delayctl", &artifactregistry.RepositoryArgs{
		Project: pulumi.String(s.project), Location: pulumi.String(s.region),
		RepositoryId: pulumi.String("delayctl"), Format: pulumi.String("DOCKER"),
		DockerConfig: &artifactregistry.RepositoryDockerConfigArgs{ImmutableTags: pulumi.Bool(true)},
	})
	if err != nil {
		return err
	}
	image := pulumi.String(s.image).ToStringOutput()
	if s.image == "" {
		image = pulumi.Sprintf("%s-docker.pkg.dev/%s/%s/delayctl:%s", repo.Location, repo.Project, repo.RepositoryId, s.imageTag)
	}
	sa, err := serviceaccount.NewAccount(ctx, "delayctl-run", &serviceaccount.AccountArgs{
		Project: pulumi.String(s.project), AccountId: pulumi.String("delayctl-run"),
		DisplayName: pulumi.String("delayctl serve on Cloud Run"),
	})
	if err != nil {
		return err
	}

	container := cloudrunv2.ServiceTemplateContainerArgs{
		// Args follow the image's ENTRYPOINT, /delayctl.
		Name: pulumi.String("delayctl"), Image: image, Args: pulumi.ToStringArray(s.serve.Args()),
		Ports: &cloudrunv2.ServiceTemplateContainerPortsArgs{Name: pulumi.String("http1"), ContainerPort: pulumi.Int(s.serve.Port)},
		Resources: &cloudrunv2.ServiceTemplateContainerResourcesArgs{
			Limits:          pulumi.StringMap{"memory": pulumi.String(s.memory), "cpu": pulumi.String(s.cpu)},
			StartupCpuBoost: pulumi.Bool(true),
		},
		Envs: cloudrunv2.ServiceTemplateContainerEnvArray{cloudrunv2.ServiceTemplateContainerEnvArgs{
			Name: pulumi.String("GOMEMLIMIT"), Value: pulumi.String(server.GoMemLimit(s.memMiB)),
		}},
		StartupProbe: &cloudrunv2.ServiceTemplateContainerStartupProbeArgs{
			HttpGet:       &cloudrunv2.ServiceTemplateContainerStartupProbeHttpGetArgs{Path: pulumi.String(server.ReadyPath), Port: pulumi.Int(s.serve.Port)},
			PeriodSeconds: pulumi.Int(1), FailureThreshold: pulumi.Int(30), TimeoutSeconds: pulumi.Int(1),
		},
		LivenessProbe: &cloudrunv2.ServiceTemplateContainerLivenessProbeArgs{
			HttpGet:       &cloudrunv2.ServiceTemplateContainerLivenessProbeHttpGetArgs{Path: pulumi.String(server.LivePath), Port: pulumi.Int(s.serve.Port)},
			PeriodSeconds: pulumi.Int(10), FailureThreshold: pulumi.Int(3), TimeoutSeconds: pulumi.Int(2),
		},
	}
	template := &cloudrunv2.ServiceTemplateArgs{
		ServiceAccount:                sa.Email,
		MaxInstanceRequestConcurrency: pulumi.Int(s.concurrency),
		Scaling: &cloudrunv2.ServiceTemplateScalingArgs{
			MinInstanceCount: pulumi.Int(s.minInstances), MaxInstanceCount: pulumi.Int(s.maxInstances),
		},
	}
	var deps []pulumi.Resource
	if s.keys {
		secret, err := secretmanager.NewSecret(ctx, "delayctl-key-hashes", &secretmanager.SecretArgs{
			Project: pulumi.String(s.project), SecretId: pulumi.String("delayctl-key-hashes"),
			Replication: secretmanager.SecretReplicationArgs{Auto: &secretmanager.SecretReplicationAutoArgs{}},
		})
		if err != nil {
			return err
		}
		version, err := secretmanager.NewSecretVersion(ctx, "delayctl-key-hashes", &secretmanager.SecretVersionArgs{
			Secret: secret.ID(), SecretData: config.New(ctx, "").RequireSecret("keyHashes"),
		})
		if err != nil {
			return err
		}
		access, err := secretmanager.NewSecretIamMember(ctx, "delayctl-key-hashes", &secretmanager.SecretIamMemberArgs{
			Project: pulumi.String(s.project), SecretId: secret.SecretId,
			Role: pulumi.String("roles/secretmanager.secretAccessor"), Member: pulumi.Sprintf("serviceAccount:%s", sa.Email),
		})
		if err != nil {
			return err
		}
		deps = append(deps, version, access)
		template.Volumes = cloudrunv2.ServiceTemplateVolumeArray{cloudrunv2.ServiceTemplateVolumeArgs{
			Name: pulumi.String("keys"),
			Secret: &cloudrunv2.ServiceTemplateVolumeSecretArgs{
				Secret: secret.SecretId,
				Items: cloudrunv2.ServiceTemplateVolumeSecretItemArray{cloudrunv2.ServiceTemplateVolumeSecretItemArgs{
					Path: pulumi.String("keys.txt"), Version: pulumi.String("latest"),
				}},
			},
		}}
		container.VolumeMounts = cloudrunv2.ServiceTemplateContainerVolumeMountArray{cloudrunv2.ServiceTemplateContainerVolumeMountArgs{
			Name: pulumi.String("keys"), MountPath: pulumi.String(keysDir),
		}}
	}
	template.Containers = cloudrunv2.ServiceTemplateContainerArray{container}
	svc, err := cloudrunv2.NewService(ctx, "delayctl", &cloudrunv2.ServiceArgs{
		Project: pulumi.String(s.project), Location: pulumi.String(s.region), Name: pulumi.String("delayctl"),
		Ingress:            pulumi.String("INGRESS_TRAFFIC_ALL"),
		DeletionProtection: pulumi.Bool(false), // so that pulumi destroy can remove it
		Template:           template,
	}, pulumi.DependsOn(deps))
	if err != nil {
		return err
	}
	// Seed 001's bearer-token auth: only these identities may invoke the service.
	for i, member := range s.invokers {
		if _, err := cloudrunv2.NewServiceIamMember(ctx, fmt.Sprintf("delayctl-invoker-%d", i), &cloudrunv2.ServiceIamMemberArgs{
			Project: pulumi.String(s.project), Location: svc.Location, Name: svc.Name,
			Role: pulumi.String("roles/run.invoker"), Member: pulumi.String(member),
		}); err != nil {
			return err
		}
	}
	ctx.Export("url", svc.Uri)
	ctx.Export("image", image)
	ctx.Export("serviceAccount", sa.Email)
	return nil
}
