package evaluate

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/delayctl/delayctl/pkg/model"
)

// logLine is one line of serve --prediction-log.
type logLine struct {
	Time         string                     `json:"time"`
	ModelVersion string                     `json:"model_version"`
	RequestID    string                     `json:"request_id"`
	Instance     int                        `json:"instance"`
	Inputs       map[string]json.RawMessage `json:"inputs"`
	Probability  *float64                   `json:"probability"`
}

// joinKey is how an outcome names a logged prediction: the request id, with "/N" for the
// N-th instance (N >= 1) of a batch.
func joinKey(id string, instance int) string {
	if instance == 0 {
		return id
	}
	return id + "/" + strconv.Itoa(instance)
}

// readLog joins the prediction log with the outcomes CSV by key.
func readLog(m *model.Model, opts Options) ([]sample, []string, error) {
	labelCol := opts.LabelColumn
	if labelCol == "" {
		cfg, err := pipelineConfig(m, "")
		if err != nil {
			return nil, nil, err
		}
		labelCol = cfg.Label.Column
		if labelCol == "" {
			return nil, nil, fmt.Errorf("the model's label is derived from %s; give --label-column", cfg.Label.DelayMinutesColumn)
		}
	}
	keyCol := opts.KeyColumn
	if keyCol == "" {
		keyCol = DefaultKeyColumn
	}
	outcomes, err := readOutcomes(opts.OutcomesPath, keyCol, labelCol)
	if err != nil {
		return nil, nil, err
	}
	f, err := os.Open(opts.PredictionsPath)
	if err != nil {
		return nil, nil, fmt.Errorf("could not open the prediction log: %w", err)
	}
	defer f.Close()
	names := binIndex(m)
	var rows []sample
	otherVersion, unmatched := 0, 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var l logLine
		if err := json.Unmarshal(line, &l); err != nil {
			return nil, nil, fmt.Errorf("%s line %d: not a prediction log line: %w", opts.PredictionsPath, n, err)
		}
		if l.Probability == nil || l.Inputs == nil {
			return nil, nil, fmt.Errorf("%s line %d: a prediction log line needs probability and inputs", opts.PredictionsPath, n)
		}
		if l.RequestID == "" {
			unmatched++
			continue
		}
		delayed, ok := outcomes[joinKey(l.RequestID, l.Instance)]
		if !ok {
			unmatched++
			continue
		}
		if l.ModelVersion != m.Version {
			otherVersion++
			continue
		}
		bins, err := logBins(m, names, l.Inputs)
		if err != nil {
			return nil, nil, fmt.Errorf("%s line %d: %w", opts.PredictionsPath, n, err)
		}
		rows = append(rows, sample{bins: bins, p: *l.Probability, delayed: delayed})
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("could not read %s: %w", opts.PredictionsPath, err)
	}
	var notes []string
	if unmatched > 0 {
		notes = append(notes, fmt.Sprintf("%d logged predictions have no outcome (no %s match) and are left out", unmatched, keyCol))
	}
	if otherVersion > 0 {
		notes = append(notes, fmt.Sprintf("%d logged predictions came from another model version than %s and are left out", otherVersion, m.Version))
	}
	return rows, notes, nil
}

// readOutcomes maps each key to its 0/1 outcome; rows with an empty label are unknown yet.
func readOutcomes(path, keyCol, labelCol string) (map[string]bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("could not open outcomes: %w", err)
	}
	defer f.Close()
	cr := csv.NewReader(f)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: no header row: %w", path, err)
	}
	ki, li := -1, -1
	for i, h := range header {
		switch strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")) {
		case keyCol:
			ki = i
		case labelCol:
			li = i
		}
	}
	if ki < 0 || li < 0 {
		return nil, fmt.Errorf("%s: the header needs columns %q (key) and %q (label), has %v", path, keyCol, labelCol, header)
	}
	out := map[string]bool{}
	for row := 1; ; row++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s row %d: %w", path, row, err)
		}
		if max(ki, li) >= len(rec) {
			return nil, fmt.Errorf("%s row %d: %d fields, the key and label need %d", path, row, len(rec), max(ki, li)+1)
		}
		v := strings.TrimSpace(rec[li])
		if v == "" {
			continue
		}
		x, err := strconv.ParseFloat(v, 64)
		if err != nil || (x != 0 && x != 1) {
			return nil, fmt.Errorf("%s row %d, column %s: %q: want 0 or 1", path, row, labelCol, v)
		}
		out[strings.TrimSpace(rec[ki])] = x == 1
	}
	return out, nil
}

// binIndex maps each feature's bin names to their index.
func binIndex(m *model.Model) []map[string]int32 {
	idx := make([]map[string]int32, len(m.Features))
	for i := range m.Features {
		idx[i] = map[string]int32{}
		for j, n := range m.BinNames(i) {
			idx[i][n] = int32(j)
		}
	}
	return idx
}

// logBins bins a logged prediction's inputs: a named instance's fields, or the categories a
// vector encoded (one per feature variable).
func logBins(m *model.Model, names []map[string]int32, in map[string]json.RawMessage) ([]int32, error) {
	bins := make([]int32, len(m.Features))
	if _, named := in["crs_dep_time"]; named {
		var f model.Flight
		b, _ := json.Marshal(in)
		if err := json.Unmarshal(b, &f); err != nil {
			return nil, fmt.Errorf("inputs: %w", err)
		}
		m.BinFlight(&f, bins)
		return bins, nil
	}
	for i, feat := range m.Features {
		raw, ok := in[feat.Variable]
		if !ok {
			return nil, fmt.Errorf("inputs lack %q: the log is not from this model", feat.Variable)
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("inputs.%s: %w", feat.Variable, err)
		}
		j, ok := names[i][s]
		if !ok {
			j = int32(m.UnseenBin(i))
			if j < 0 {
				return nil, fmt.Errorf("inputs.%s: %q is not a bin of this model", feat.Variable, s)
			}
		}
		bins[i] = j
	}
	return bins, nil
}
