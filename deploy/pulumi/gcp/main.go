// Command delayctl-gcp is a Pulumi program that runs delayctl serve on Google Cloud Run, where
// seed 001 ran a Cloud Function behind IAM bearer-token auth: an Artifact Registry repository,
// a Cloud Run v2 service with probes on /readyz and /healthz, run.invoker bindings for the
// callers, and optionally API key hashes from Secret Manager. See docs/DEPLOY.md.
package main

import "github.com/pulumi/pulumi/sdk/v3/go/pulumi"

func main() { pulumi.Run(program) }
