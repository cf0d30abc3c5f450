package train

import (
	"slices"

	"github.com/delayctl/delayctl/pkg/model"
)

// baselineQuantiles cut a standardised feature's training values into ten bins.
const baselineQuantiles = 10

// buildBaseline records the held-out rows' feature bins and predicted probabilities in the
// model, as the reference that serve's drift gauges and evaluate compare later data with.
// Held-out rows are used, not training rows, so the share of unseen categories is the one
// new data from the same period brings. m must be prepared.
func buildBaseline(m *model.Model, ds *Dataset, trainIdx, heldIdx []int32, heldP []float64, heldY []bool) *model.Baseline {
	b := &model.Baseline{Source: "held-out test split", Rows: len(heldIdx), Features: make([]model.FeatureBaseline, len(m.Features))}
	for i, f := range m.Features {
		b.Features[i].Variable = f.Variable
		if f.Encoding == model.Standard {
			b.Features[i].Edges = quantileEdges(f.Variable, ds, trainIdx)
		}
	}
	m.Baseline = b
	for i := range m.Features {
		b.Features[i].Counts = make([]float64, m.NumBins(i))
	}
	bins := make([]int32, len(m.Features))
	for _, r := range heldIdx {
		f := ds.Flight(int(r))
		m.BinFlight(&f, bins)
		for i, j := range bins {
			b.Features[i].Counts[j]++
		}
	}
	n := model.DefaultPredictionBins
	b.Predictions = model.PredictionBaseline{Counts: make([]float64, n), Positives: make([]float64, n)}
	for k, p := range heldP {
		j := model.PredictionBin(p, n)
		b.Predictions.Counts[j]++
		if heldY[k] {
			b.Predictions.Positives[j]++
		}
	}
	return b
}

// quantileEdges are the distinct deciles of a numeric variable over the rows.
func quantileEdges(variable string, ds *Dataset, idx []int32) []float64 {
	v := make([]float64, len(idx))
	for k, r := range idx {
		f := ds.Flight(int(r))
		v[k] = model.ValueOf(variable, &f)
	}
	slices.Sort(v)
	var edges []float64
	for q := 1; q < baselineQuantiles; q++ {
		e := v[(len(v)-1)*q/baselineQuantiles]
		if len(edges) == 0 || e > edges[len(edges)-1] {
			edges = append(edges, e)
		}
	}
	return edges
}
