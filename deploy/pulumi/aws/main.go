// Command delayctl-aws is a Pulumi program that runs delayctl serve on AWS ECS Fargate behind
// an Application Load Balancer, where seed 000 deployed its model server: an ECR repository,
// an ECS cluster, a Fargate task and service, autoscaling on CPU and on requests per target,
// API key hashes from Secrets Manager and a CloudWatch log group. See docs/DEPLOY.md.
package main

import "github.com/pulumi/pulumi/sdk/v3/go/pulumi"

func main() { pulumi.Run(program) }
