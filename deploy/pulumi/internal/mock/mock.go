// Package mock runs a Pulumi program against pulumi.WithMocks and records every resource's
// inputs as plain Go values, for tests that assert what a program would ask a cloud for.
// No credentials, no CLI, no network.
package mock

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Resource is one declared resource: its type token, logical name and inputs.
type Resource struct {
	Type, Name string
	Inputs     map[string]any
}

// Monitor answers resource registrations the way a provider would for a create: the inputs
// echoed back, plus the outputs Outputs adds, and records the inputs.
type Monitor struct {
	// Outputs adds provider-computed outputs (ARNs, URLs) for a resource of type typ.
	Outputs func(typ, name string, inputs resource.PropertyMap) resource.PropertyMap

	mu  sync.Mutex
	res []Resource
}

// NewResource implements pulumi.MockResourceMonitor.
func (m *Monitor) NewResource(a pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	state := a.Inputs.Copy()
	if m.Outputs != nil {
		for k, v := range m.Outputs(a.TypeToken, a.Name, a.Inputs) {
			state[k] = v
		}
	}
	m.mu.Lock()
	m.res = append(m.res, Resource{Type: a.TypeToken, Name: a.Name, Inputs: Plain(resource.NewObjectProperty(a.Inputs)).(map[string]any)})
	m.mu.Unlock()
	return a.Name + "-id", state, nil
}

// Call implements pulumi.MockResourceMonitor; the programs make no invokes.
func (m *Monitor) Call(a pulumi.MockCallArgs) (resource.PropertyMap, error) {
	return nil, fmt.Errorf("unexpected invoke %s", a.Token)
}

// Run runs program with the stack config cfg ("project:key" -> value) and returns what it declared.
func Run(project string, program pulumi.RunFunc, cfg map[string]string, outputs func(string, string, resource.PropertyMap) resource.PropertyMap) ([]Resource, error) {
	m := &Monitor{Outputs: outputs}
	err := pulumi.RunErr(program, pulumi.WithMocks(project, "test", m), func(ri *pulumi.RunInfo) { ri.Config = cfg })
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.res), err
}

// Find returns the resources of type typ.
func Find(rs []Resource, typ string) []Resource {
	var out []Resource
	for _, r := range rs {
		if r.Type == typ {
			out = append(out, r)
		}
	}
	return out
}

// Plain turns a property value into plain Go values (map[string]any, []any, string, float64,
// bool, nil), unwrapping secrets and resolved outputs; unknown values become "<unknown>".
func Plain(v resource.PropertyValue) any {
	switch {
	case v.IsSecret():
		return Plain(v.SecretValue().Element)
	case v.IsOutput():
		if !v.OutputValue().Known {
			return "<unknown>"
		}
		return Plain(v.OutputValue().Element)
	case v.IsComputed():
		return "<unknown>"
	case v.IsObject():
		m := map[string]any{}
		for k, e := range v.ObjectValue() {
			m[string(k)] = Plain(e)
		}
		return m
	case v.IsArray():
		var a []any
		for _, e := range v.ArrayValue() {
			a = append(a, Plain(e))
		}
		return a
	case v.IsResourceReference():
		return string(v.ResourceReferenceValue().URN)
	}
	return v.V
}

// Get follows a path of map keys and array indexes ("healthCheck.path", "ingress.0.fromPort").
func Get(v any, path string) any {
	for _, k := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[k]
		case []any:
			var i int
			if _, err := fmt.Sscan(k, &i); err != nil || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

// MustRun is Run for tests: it fails t when the program returns an error.
func MustRun(t testing.TB, project string, program pulumi.RunFunc, cfg map[string]string, outputs func(string, string, resource.PropertyMap) resource.PropertyMap) []Resource {
	t.Helper()
	rs, err := Run(project, program, cfg, outputs)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// One returns the inputs of the only resource of type typ, failing t unless there is exactly one.
func One(t testing.TB, rs []Resource, typ string) map[string]any {
	t.Helper()
	found := Find(rs, typ)
	if len(found) != 1 {
		t.Fatalf("want one %s, have %d", typ, len(found))
	}
	return found[0].Inputs
}

// Named returns the inputs of the resource of type typ named name, failing t when there is none.
func Named(t testing.TB, rs []Resource, typ, name string) map[string]any {
	t.Helper()
	for _, r := range Find(rs, typ) {
		if r.Name == name {
			return r.Inputs
		}
	}
	t.Fatalf("no %s named %s", typ, name)
	return nil
}
