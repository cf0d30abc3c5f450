package train

import (
	"math"
	"testing"
)

func TestRankingMetricsByHand(t *testing.T) {
	tests := map[string]struct {
		p      []float64
		y      []bool
		auc    float64
		ap     float64
		thresh float64
	}{
		"Perfect ranking.": {
			p: []float64{0.9, 0.8, 0.3, 0.1}, y: []bool{true, true, false, false},
			auc: 1, ap: 1, thresh: 0.8,
		},
		"Reversed ranking.": {
			p: []float64{0.9, 0.8, 0.3, 0.1}, y: []bool{false, false, true, true},
			// AP: recall reaches 1/2 at precision 1/3, then 1 at precision 2/4.
			auc: 0, ap: 0.5*(1.0/3) + 0.5*(2.0/4), thresh: 0.1,
		},
		"One swapped pair of four.": {
			// Pairs (pos, neg): (0.9,0.7) ok, (0.9,0.2) ok, (0.4,0.7) wrong, (0.4,0.2) ok: 3/4.
			p: []float64{0.9, 0.7, 0.4, 0.2}, y: []bool{true, false, true, false},
			auc: 0.75, ap: 0.5*1 + 0.5*(2.0/3), thresh: 0.4,
		},
		"Ties count one half.": {
			// The only pair ties: AUC 1/2. All four rows share one threshold: precision 1/2.
			p: []float64{0.5, 0.5, 0.5, 0.5}, y: []bool{true, false, false, true},
			auc: 0.5, ap: 0.5, thresh: 0.5,
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := rocAUC(tt.p, tt.y); math.Abs(got-tt.auc) > 1e-12 {
				t.Errorf("rocAUC = %v, want %v", got, tt.auc)
			}
			if got := averagePrecision(tt.p, tt.y); math.Abs(got-tt.ap) > 1e-12 {
				t.Errorf("averagePrecision = %v, want %v", got, tt.ap)
			}
			if got, _ := bestF1Threshold(tt.p, tt.y); got != tt.thresh {
				t.Errorf("bestF1Threshold = %v, want %v", got, tt.thresh)
			}
		})
	}
}

func TestEvaluateByHand(t *testing.T) {
	p := []float64{0.9, 0.6, 0.4, 0.2, 0.1}
	y := []bool{true, false, true, false, false}
	m := evaluate(p, y, 0.5, 0.4)
	want := Confusion{TP: 1, FP: 1, TN: 2, FN: 1}
	if m.Confusion != want {
		t.Fatalf("confusion %+v, want %+v", m.Confusion, want)
	}
	check := func(name string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-12 {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	check("accuracy", m.Accuracy, 3.0/5)
	check("precision", m.Precision, 0.5)
	check("recall", m.Recall, 0.5)
	check("f1", m.F1, 0.5)
	check("brier", m.Brier, (0.01+0.36+0.36+0.04+0.01)/5)
	check("log_loss", m.LogLoss, -(math.Log(0.9)+math.Log(0.4)+math.Log(0.4)+math.Log(0.8)+math.Log(0.9))/5)
	// The baseline says "on time" (prior 0.4 < 0.5) with probability 0.4 for every row.
	check("baseline accuracy", m.Baseline.Accuracy, 3.0/5)
	check("baseline log_loss", m.Baseline.LogLoss, -(2*math.Log(0.4)+3*math.Log(0.6))/5)
	check("baseline brier", m.Baseline.Brier, (2*0.36+3*0.16)/5)
	if m.Baseline.Precision != 0 || m.Baseline.Recall != 0 || m.Baseline.ROCAUC != 0.5 {
		t.Errorf("baseline %+v should have precision 0, recall 0, AUC 0.5", m.Baseline)
	}
}

func TestStratifiedFoldsKeepTheClassShare(t *testing.T) {
	y := make([]bool, 1003)
	for i := range y {
		y[i] = i%7 == 0
	}
	folds := stratifiedFolds(y, seq(len(y)), 5, newRand(1))
	seen := map[int32]bool{}
	for _, f := range folds {
		pos := 0
		for _, i := range f {
			if seen[i] {
				t.Fatalf("row %d in two folds", i)
			}
			seen[i] = true
			if y[i] {
				pos++
			}
		}
		if pos < 28 || pos > 29 {
			t.Errorf("fold with %d rows has %d delayed, want 28 or 29 of 144", len(f), pos)
		}
	}
	if len(seen) != len(y) {
		t.Fatalf("folds cover %d of %d rows", len(seen), len(y))
	}
}
