package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/delayctl/delayctl/internal/testtool"
	"github.com/delayctl/delayctl/pkg/model"
	"github.com/delayctl/delayctl/pkg/serve"
	"github.com/delayctl/delayctl/pkg/slo"
	"github.com/delayctl/delayctl/pkg/train"
	"github.com/google/go-cmp/cmp"
)

// monthRows writes the rows of every other real 2016 flight whose month keep
// selects, and returns the CSV's path and the rows as flights.
func monthRows(t *testing.T, dir, name string, keep func(int) bool) string {
	t.Helper()
	in, err := os.Open(testtool.HalfFlights(t, t.TempDir(), "half.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	recs, err := csv.NewReader(in).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write(recs[0])
	for _, r := range recs[1:] {
		if m, _ := strconv.Atoi(r[1]); keep(m) {
			_ = w.Write(r)
		}
	}
	w.Flush()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// The whole loop on real flights: a model trained on January to September, served, sent
// flights of the same months or of October to December; the live verdicts of the shipped SLO
// file's model objectives must follow.
func TestLiveDriftVerdictsOnRealFlights(t *testing.T) {
	dir := t.TempDir()
	modelPath := filepath.Join(dir, "model.json")
	data := monthRows(t, dir, "jan-sep.csv", func(m int) bool { return m <= 9 })
	if _, err := train.Run(context.Background(), train.Options{DataPath: data, OutPath: modelPath, CVFolds: -1}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(modelPath)
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		months func(int) bool
		want   map[string]slo.Status
	}{
		"Flights of the training months keep every drift objective.": {months: func(m int) bool { return m <= 9 },
			want: map[string]slo.Status{"model-auc": slo.StatusSkipped, "prediction-drift": slo.StatusMet, "airport-drift": slo.StatusMet, "unseen-categories": slo.StatusMet}},
		"October to December shift the predictions and bring unseen months.": {months: func(m int) bool { return m >= 10 },
			want: map[string]slo.Status{"model-auc": slo.StatusSkipped, "prediction-drift": slo.StatusBreached, "airport-drift": slo.StatusMet, "unseen-categories": slo.StatusBreached}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s, err := serve.New(m, serve.Options{MaxBodyBytes: 1 << 20, MaxBatch: 1000, MaxInflight: 4}, nil)
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(s.Handler())
			defer srv.Close()
			var flights []model.Flight
			err = m.ReadFlights(strings.NewReader(readAll(t, monthRows(t, dir, "traffic.csv", tc.months))), func(_ int, f model.Flight) error {
				flights = append(flights, f)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			// Every third flight keeps the traffic bounded while filling the window well past
			// serve.DriftMinObservations.
			var batch []model.Flight
			for i := 0; i < len(flights); i += 3 {
				batch = append(batch, flights[i])
			}
			for i := 0; i < len(batch); i += 200 {
				body, _ := json.Marshal(map[string]any{"instances": batch[i:min(i+200, len(batch))]})
				resp, err := http.Post(srv.URL+"/predict", "application/json", bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Fatalf("status %d", resp.StatusCode)
				}
			}
			spec, err := slo.LoadFile("../../configs/slo.yaml")
			if err != nil {
				t.Fatal(err)
			}
			snap, err := slo.Scrape(context.Background(), http.DefaultClient, srv.URL+"/metrics")
			if err != nil {
				t.Fatal(err)
			}
			d, err := slo.Diff(spec, snap, snap)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]slo.Status{}
			for _, o := range spec.Objectives {
				if o.Kind == slo.KindModel {
					got[o.Name] = slo.Judge(o, d.Measure(o, 1), 0, spec.Window).Status
				}
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("model objectives of configs/slo.yaml (-want +got):\n%s", d)
			}
		})
	}
}

func readAll(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
