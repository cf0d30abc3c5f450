package bench

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/delayctl/delayctl/pkg/model"
	"github.com/delayctl/delayctl/pkg/serve"
)

// End to end: bodies built from real flight rows with a real model are all accepted by the
// real server's /predict, in both body forms. testdata/model.json was trained with
// `delayctl train --data data/flightdata.csv`; testdata/flights_small.csv is that file's first
// 40 rows.
func TestFromDataAgainstTheRealServer(t *testing.T) {
	m, err := model.Load("testdata/model.json")
	if err != nil {
		t.Fatalf("loading the model fixture (retrain it if the schema changed): %v", err)
	}
	srv, err := serve.New(m, serve.Options{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	for _, form := range []string{BodyFormX, BodyFormInstances, BodyFormMixed} {
		t.Run(form, func(t *testing.T) {
			o := attackOpts(ts.URL+"/predict", "100/s", 500*time.Millisecond)
			o.FromData, o.Model, o.BodyForm = "testdata/flights_small.csv", "testdata/model.json", form
			o.LoadModel = loadModel
			o.MaxBody = 512
			rep := mustAttack(t, context.Background(), o)
			if rep.Requests == 0 || rep.Success != rep.Requests {
				t.Fatalf("%d requests, %d ok, codes %v, errors %+v", rep.Requests, rep.Success, rep.StatusCodes, rep.Errors)
			}
			if rep.BytesIn.Total == 0 {
				t.Fatal("no response bytes read with --max-body 512")
			}
		})
	}
}
