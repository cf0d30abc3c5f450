package train

import (
	"context"
	"fmt"
	"log/slog"

	"gonum.org/v1/gonum/stat"
)

// DefaultL2Grid is the grid --l2 auto searches: half-decades around the default 1e-4.
var DefaultL2Grid = []float64{1e-6, 3e-6, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2}

// L2Search reports how --l2 auto chose the regularisation.
type L2Search struct {
	// Folds is the number of stratified folds of the training split each value was scored on.
	Folds int `json:"folds"`
	// Grid lists each value with its mean cross-validated ROC AUC.
	Grid []L2Score `json:"grid"`
	// Chosen is the value with the best mean ROC AUC (the larger on ties).
	Chosen float64 `json:"chosen"`
}

// L2Score is one value of an L2 search.
type L2Score struct {
	L2        float64 `json:"l2"`
	ROCAUC    float64 `json:"cv_roc_auc_mean"`
	ROCAUCStd float64 `json:"cv_roc_auc_std"`
}

// searchL2 scores every value of the grid by k-fold cross-validation on the rows idx (the
// training split: the test split never informs the choice) and returns the best.
func searchL2(ctx context.Context, cfg Config, ds *Dataset, idx []int32, grid []float64, k int, log *slog.Logger) (*L2Search, error) {
	folds := stratifiedFolds(ds.Delayed, idx, k, newRand(cfg.Training.Seed+2))
	s := &L2Search{Folds: k}
	best := -1
	for _, l2 := range grid {
		c := cfg
		c.Training.L2 = l2
		aucs, err := foldAUCs(ctx, c, ds, folds, func(int, float64) {})
		if err != nil {
			return nil, fmt.Errorf("l2 search, l2 %g: %w", l2, err)
		}
		mean, std := stat.PopMeanStdDev(aucs, nil)
		s.Grid = append(s.Grid, L2Score{L2: l2, ROCAUC: mean, ROCAUCStd: std})
		log.Info("l2 search", "l2", l2, "cv_roc_auc_mean", mean)
		if best < 0 || mean >= s.Grid[best].ROCAUC {
			best = len(s.Grid) - 1
		}
	}
	s.Chosen = s.Grid[best].L2
	return s, nil
}
