// Package check decodes deploy/k8s strictly with the Kubernetes API types of the oldest
// supported minor (k8s.io/api in this module's go.mod, stated in docs/DEPLOY.md), so that a
// field newer than that release fails `make k8s-check`. The newest types are checked by
// cmd/delayctl's TestManifests, with delayctl's own k8s.io/api. A separate module, because
// one module cannot hold two versions of k8s.io/api.
package check
