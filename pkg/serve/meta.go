package serve

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/delayctl/delayctl/pkg/model"
)

// modelMetadata is the body of GET /v1/models/{name}: everything a client needs to build the
// vector itself, and what the model is.
type modelMetadata struct {
	Name         string              `json:"name"`
	Version      string              `json:"version"`
	Checksum     string              `json:"checksum"`
	Label        model.Label         `json:"label"`
	Threshold    float64             `json:"threshold"`
	VectorLength int                 `json:"vector_length"`
	FeatureNames []string            `json:"feature_names"`
	Features     []model.Feature     `json:"features"`
	Categories   map[string][]string `json:"categories"`
	// Crosses lists the crossed variable pairs; their pairs are in Features.
	Crosses     [][]string      `json:"crosses,omitempty"`
	InputFields []string        `json:"input_fields"`
	Metrics     json.RawMessage `json:"metrics,omitempty"`
	Training    trainingSummary `json:"training"`
	LoadedAt    time.Time       `json:"loaded_at"`
}

type trainingSummary struct {
	TrainedAt   string `json:"trained_at,omitempty"`
	ToolVersion string `json:"tool_version,omitempty"`
	DataFile    string `json:"data_file,omitempty"`
	DataSHA256  string `json:"data_sha256,omitempty"`
	RowsUsed    int    `json:"rows_used"`
	TrainRows   int    `json:"train_rows"`
	TestRows    int    `json:"test_rows"`
	Seed        int64  `json:"seed"`
}

func v1Metadata(m *model.Model, loadedAt time.Time) modelMetadata {
	md := modelMetadata{
		Name: m.Name, Version: m.Version, Checksum: m.Checksum, Label: m.Label, Threshold: m.Threshold,
		VectorLength: m.NumFeatures(), FeatureNames: m.FeatureNames(), Features: m.Features,
		Categories:  map[string][]string{},
		InputFields: []string{"month", "day_of_month", "day_of_week", "origin", "dest", "carrier", "crs_dep_time"},
		Training: trainingSummary{
			TrainedAt: m.Training.TrainedAt, ToolVersion: m.Training.ToolVersion, DataFile: m.Training.DataFile,
			DataSHA256: m.Training.DataSHA256, RowsUsed: m.Training.RowsUsed, TrainRows: m.Training.TrainRows,
			TestRows: m.Training.TestRows, Seed: m.Training.Seed,
		},
		LoadedAt: loadedAt,
	}
	if len(m.Training.Metrics) > 0 && json.Valid(m.Training.Metrics) {
		md.Metrics = m.Training.Metrics
	}
	for _, f := range m.Features {
		switch f.Encoding {
		case model.OneHot:
			md.Categories[f.Variable] = f.Vocabulary
		case model.Cross:
			md.Crosses = append(md.Crosses, f.Cross)
		}
	}
	return md
}

// v1Model serves GET /v1/models/{name}.
func (s *Server) v1Model(w http.ResponseWriter, r *http.Request) {
	lm := s.cur.Load()
	if name := r.PathValue("name"); name != lm.m.Name {
		writeError(w, http.StatusNotFound, fmt.Sprintf("model %q not found: this server serves %q", name, lm.m.Name))
		return
	}
	writeJSON(w, http.StatusOK, lm.v1Meta)
}

// healthz serves GET /healthz: the process is alive and answering.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, []byte(`{"status":"ok"}`+"\n"))
}

// readyz serves GET /readyz: 200 while a valid model is loaded and the server is not draining.
func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	lm := s.cur.Load()
	if !s.ready() {
		writeJSON(w, http.StatusServiceUnavailable, []byte(`{"ready":false,"reason":"draining: the server is shutting down"}`+"\n"))
		return
	}
	b := append([]byte(`{"ready":true,"model_name":`), lm.nameJSON...)
	b = append(b, `,"model_version":`...)
	b = append(b, lm.versionJSON...)
	writeJSON(w, http.StatusOK, append(b, "}\n"...))
}

// reloadAnswer is the body of POST /admin/reload.
type reloadAnswer struct {
	Result   string    `json:"result"`
	Error    string    `json:"error,omitempty"`
	Model    modelID   `json:"model"`
	Previous *modelID  `json:"previous,omitempty"`
	At       time.Time `json:"at"`
}

type modelID struct {
	Name     string `json:"name"`
	Version  string `json:"version"`
	Checksum string `json:"checksum"`
}

func idOf(m *model.Model) modelID { return modelID{m.Name, m.Version, m.Checksum} }

// adminReload serves POST /admin/reload: reload the model file now. 200 with the new model, or
// 422 with the reason when the file is refused (the old model, named in the answer, keeps
// serving).
func (s *Server) adminReload(w http.ResponseWriter, _ *http.Request) {
	prev := s.cur.Load().m
	m, err := s.Reload("http")
	ans := reloadAnswer{Result: "success", At: time.Now().UTC()}
	status := http.StatusOK
	if err != nil {
		ans.Result, ans.Error, ans.Model = "failure", err.Error(), idOf(prev)
		status = http.StatusUnprocessableEntity
	} else {
		p := idOf(prev)
		ans.Model, ans.Previous = idOf(m), &p
	}
	b, _ := json.Marshal(ans)
	writeJSON(w, status, append(b, '\n'))
}
