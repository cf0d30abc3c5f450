package model

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// ErrChecksum is wrapped when an artifact's content does not match its recorded checksum.
var ErrChecksum = errors.New("checksum mismatch")

const checksumPrefix = "sha256:"

// contentHash is the sha256 of the model's compact JSON with the checksum field empty.
// encoding/json writes struct fields in declaration order and float64s in their shortest
// round-trip form, so decoding and re-encoding an artifact reproduces these bytes exactly.
func (m *Model) contentHash() (string, error) {
	c := *m
	c.Checksum = ""
	b, err := json.Marshal(&c)
	if err != nil {
		return "", fmt.Errorf("could not encode model: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// ContentVersion returns a short version derived from what the model computes (features,
// coefficients, threshold, label), not from when it was trained: retraining on the same data,
// config and seed gives the same version.
func (m *Model) ContentVersion() (string, error) {
	c := Model{
		SchemaVersion: m.SchemaVersion, Label: m.Label, Input: m.Input, Features: m.Features,
		VectorLength: m.VectorLength, Intercept: m.Intercept, Coefficients: m.Coefficients, Threshold: m.Threshold,
	}
	h, err := c.contentHash()
	if err != nil {
		return "", err
	}
	return h[:12], nil
}

// Seal sets the schema version (v2 with crosses, else v1) and checksum. Save calls it.
func (m *Model) Seal() error {
	m.SchemaVersion = m.schema()
	h, err := m.contentHash()
	if err != nil {
		return err
	}
	m.Checksum = checksumPrefix + h
	return nil
}

// Write seals the model and writes it as indented JSON.
func (m *Model) Write(w io.Writer) error {
	if err := m.Prepare(); err != nil {
		return fmt.Errorf("refusing to write an invalid model: %w", err)
	}
	if err := m.Seal(); err != nil {
		return err
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("could not encode model: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// Save writes the model to path atomically: a temporary file in the same directory, synced,
// then renamed over path. A failure leaves no partial file behind.
func (m *Model) Save(path string) error {
	return WriteFileAtomic(path, m.Write)
}

// WriteFileAtomic writes a file through write into a temporary file beside path and renames
// it into place only when write succeeded, so readers never see a half-written file.
func WriteFileAtomic(path string, write func(io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("could not write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = write(tmp); err != nil {
		return fmt.Errorf("could not write %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("could not write %s: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("could not write %s: %w", path, err)
	}
	if err = os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("could not write %s: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("could not write %s: %w", path, err)
	}
	return nil
}

// Load reads and verifies a model file. See Decode.
func Load(path string) (*Model, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("could not open model: %w", err)
	}
	defer f.Close()
	m, err := Decode(f)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", path, err)
	}
	return m, nil
}

// Decode reads an artifact and verifies, in order: that it is JSON with no unknown fields, its
// schema version, its checksum, and its shapes (Prepare). Each error says what is wrong.
func Decode(r io.Reader) (*Model, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("could not read: %w", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("file is empty")
	}
	var probe struct {
		SchemaVersion string `json:"schema_version"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("not a JSON model: %w", jsonPosition(data, err))
	}
	if probe.SchemaVersion != SchemaVersion && probe.SchemaVersion != SchemaVersionCrosses {
		return nil, fmt.Errorf("unsupported schema_version %q, want %q or %q (with feature crosses)", probe.SchemaVersion, SchemaVersion, SchemaVersionCrosses)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	m := new(Model)
	if err := dec.Decode(m); err != nil {
		return nil, fmt.Errorf("invalid model: %w", jsonPosition(data, err))
	}
	if !strings.HasPrefix(m.Checksum, checksumPrefix) {
		return nil, fmt.Errorf("checksum %q must start with %q", m.Checksum, checksumPrefix)
	}
	h, err := m.contentHash()
	if err != nil {
		return nil, err
	}
	if got := checksumPrefix + h; got != m.Checksum {
		return nil, fmt.Errorf("%w: recorded %s, content hashes to %s (the file was edited or corrupted)", ErrChecksum, m.Checksum, got)
	}
	if err := m.Prepare(); err != nil {
		return nil, err
	}
	return m, nil
}

// jsonPosition adds line and column to JSON syntax and type errors.
func jsonPosition(data []byte, err error) error {
	var off int64 = -1
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	}
	if off < 0 {
		return err
	}
	line, col := 1, 1
	for _, b := range data[:min(int(off), len(data))] {
		if b == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return fmt.Errorf("line %d column %d: %w", line, col, err)
}
