// Command sklearn-compare fits delayctl's logistic regression on every cleaned row of a flight
// CSV and writes what compare.py needs to refit the same design with scikit-learn: the dense
// design matrix with the label, and delayctl's coefficients, loss and fit time.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strconv"

	"github.com/delayctl/delayctl/pkg/train"
)

func main() {
	data := flag.String("data", "data/flightdata.csv", "flight CSV")
	config := flag.String("config", "configs/train.yaml", "pipeline config")
	dir := flag.String("out", "out/sklearn-compare", "output directory")
	solver := flag.String("solver", "", "newton or newton-cg (default: by the design's width, as training)")
	flag.Parse()
	if err := run(*data, *config, *dir, *solver); err != nil {
		log.Fatal(err)
	}
}

func run(data, config, dir, solver string) error {
	cfg, err := train.LoadConfig(config)
	if err != nil {
		return err
	}
	f, err := os.Open(data)
	if err != nil {
		return err
	}
	defer f.Close()
	ds, _, err := train.Clean(f, cfg)
	if err != nil {
		return err
	}
	m, fit, err := train.FitAll(cfg, ds, solver)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	df, err := os.Create(filepath.Join(dir, "design.csv"))
	if err != nil {
		return err
	}
	w := bufio.NewWriter(df)
	var x []float64
	for i := range ds.Len() {
		x = m.Encode(ds.Flight(i), x)
		if ds.Delayed[i] {
			w.WriteString("1")
		} else {
			w.WriteString("0")
		}
		for _, v := range x {
			w.WriteByte(',')
			w.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
		}
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := df.Close(); err != nil {
		return err
	}
	res := map[string]any{
		"rows": ds.Len(), "l2": cfg.Training.L2, "intercept": m.Intercept, "coefficients": m.Coefficients,
		"log_loss": fit.TrainLoss, "solver": fit.Solver, "passes": fit.Passes, "fit_seconds": fit.Seconds, "iterations": fit.Iterations, "gradient_norm": fit.GradientNorm,
	}
	b, _ := json.MarshalIndent(res, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "delayctl.json"), b, 0o644); err != nil {
		return err
	}
	fmt.Printf("delayctl: %d rows x %d features, %s, %d iterations, %.4fs\n", ds.Len(), m.NumFeatures(), fit.Solver, fit.Iterations, fit.Seconds)
	return nil
}
