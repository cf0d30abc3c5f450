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
	"strings"
	"syscall"

	"github.com/delayctl/delayctl/pkg/atomicfile"
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
	return atomicfile.Write(path, 0o644, m.Write)
}

// Load reads and verifies a model file. See Decode. Anything but a regular file is refused
// without blocking (see OpenRegular).
func Load(path string) (*Model, error) {
	f, err := OpenRegular(path)
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

// ErrNotRegular is wrapped by OpenRegular's error for a path that is not a regular file.
var ErrNotRegular = errors.New("not a regular file")

// OpenRegular opens path for reading if it is a regular file (or a symlink to one), and refuses
// anything else without blocking: opening a named pipe with no writer, or reading a device,
// would otherwise hang the caller (a server reloading its model on SIGHUP). The file is opened
// non-blocking, which opens a pipe at once, and then checked, so no other file can be swapped
// in between the check and the open.
func OpenRegular(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		_ = f.Close()
		return nil, fmt.Errorf("%s: %w (%s)", path, ErrNotRegular, fileKind(fi.Mode()))
	}
	return f, nil
}

func fileKind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a named pipe"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeDevice != 0:
		return "a device"
	}
	return "mode " + m.String()
}
