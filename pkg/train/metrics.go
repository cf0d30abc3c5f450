package train

import (
	"cmp"
	"math"
	"slices"
)

// Metrics is the evaluation of a model on held-out rows. Probabilities at or above Threshold
// count as predicted delays.
type Metrics struct {
	Threshold       float64 `json:"threshold"`
	ThresholdMethod string  `json:"threshold_method"`
	Rows            int     `json:"rows"`
	Positives       int     `json:"positives"`
	Scores
	Confusion Confusion `json:"confusion_matrix"`
	// Baseline predicts the majority class for every row, with the training prior as its
	// probability: the bar a useful model must clear.
	Baseline Baseline `json:"baseline"`
	// L2 is the regularisation of the evaluated model; L2Search says how --l2 auto chose it.
	L2       float64   `json:"l2"`
	L2Search *L2Search `json:"l2_search,omitempty"`
	// Cross-validation over all cleaned rows, when requested.
	CVFolds      int       `json:"cv_folds,omitempty"`
	CVROCAUC     []float64 `json:"cv_roc_auc,omitempty"`
	CVROCAUCMean *float64  `json:"cv_roc_auc_mean,omitempty"`
	CVROCAUCStd  *float64  `json:"cv_roc_auc_std,omitempty"`
	// TimeHoldout and TimeCV are the out-of-time evaluations (timesplit.go), when on.
	TimeHoldout *TimeHoldout `json:"time_holdout,omitempty"`
	TimeCV      *TimeCV      `json:"time_cv,omitempty"`
}

// Confusion counts predictions against truth; "positive" means delayed.
type Confusion struct {
	TP int `json:"tp"`
	FP int `json:"fp"`
	TN int `json:"tn"`
	FN int `json:"fn"`
}

// Scores are the evaluation figures shared by a model and its baseline.
type Scores struct {
	Accuracy  float64 `json:"accuracy"`
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F1        float64 `json:"f1"`
	ROCAUC    float64 `json:"roc_auc"`
	PRAUC     float64 `json:"pr_auc"`
	LogLoss   float64 `json:"log_loss"`
	Brier     float64 `json:"brier"`
}

// Baseline scores the majority-class predictor.
type Baseline struct {
	Prediction string `json:"prediction"`
	Scores
}

// evaluate scores probabilities p against labels y at threshold t. prior is the training
// split's delay rate, the baseline's constant probability.
func evaluate(p []float64, y []bool, t, prior float64) Metrics {
	m := Metrics{Threshold: t, Rows: len(y)}
	var ll, brier float64
	for i, pi := range p {
		yi := 0.0
		if y[i] {
			yi = 1
			m.Positives++
		}
		pred := pi >= t
		switch {
		case pred && y[i]:
			m.Confusion.TP++
		case pred:
			m.Confusion.FP++
		case y[i]:
			m.Confusion.FN++
		default:
			m.Confusion.TN++
		}
		ll += logLoss(pi, yi)
		brier += (pi - yi) * (pi - yi)
	}
	n := float64(len(y))
	c := m.Confusion
	m.Accuracy = float64(c.TP+c.TN) / n
	m.Precision = ratio(c.TP, c.TP+c.FP)
	m.Recall = ratio(c.TP, c.TP+c.FN)
	m.F1 = f1(m.Precision, m.Recall)
	m.ROCAUC = rocAUC(p, y)
	m.PRAUC = averagePrecision(p, y)
	m.LogLoss = ll / n
	m.Brier = brier / n

	b := Baseline{Prediction: "on time", Scores: Scores{ROCAUC: 0.5, PRAUC: float64(m.Positives) / n}}
	pos := float64(m.Positives)
	if prior >= 0.5 {
		b.Prediction = "delayed"
		b.Accuracy = pos / n
		b.Precision = pos / n
		b.Recall = 1
		b.F1 = f1(b.Precision, b.Recall)
	} else {
		b.Accuracy = (n - pos) / n
	}
	b.LogLoss = (pos*logLoss(prior, 1) + (n-pos)*logLoss(prior, 0)) / n
	b.Brier = (pos*(1-prior)*(1-prior) + (n-pos)*prior*prior) / n
	m.Baseline = b
	return m
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func f1(p, r float64) float64 {
	if p+r == 0 {
		return 0
	}
	return 2 * p * r / (p + r)
}

// logLoss clips p to [1e-15, 1-1e-15], as scikit-learn does, so a confident mistake costs
// about 34.5 rather than infinity.
func logLoss(p, y float64) float64 {
	p = math.Min(math.Max(p, 1e-15), 1-1e-15)
	return -(y*math.Log(p) + (1-y)*math.Log(1-p))
}

// sweep visits every distinct score from the highest down, with the cumulative counts of
// delayed (tp) and on-time (fp) rows scoring at or above it: one point per threshold of the
// ROC and precision-recall curves. It sorts the scores of each class apart and merges them,
// which needs 8 bytes per score and no index.
func sweep(p []float64, y []bool, visit func(score, tp, fp float64)) (pos, neg float64) {
	var ps, ns []float64
	for i, v := range p {
		if y[i] {
			ps = append(ps, v)
		} else {
			ns = append(ns, v)
		}
	}
	desc := func(a, b float64) int { return cmp.Compare(b, a) }
	slices.SortFunc(ps, desc)
	slices.SortFunc(ns, desc)
	i, j := 0, 0
	for i < len(ps) || j < len(ns) {
		var s float64
		switch {
		case j == len(ns) || (i < len(ps) && ps[i] >= ns[j]):
			s = ps[i]
		default:
			s = ns[j]
		}
		for ; i < len(ps) && ps[i] == s; i++ {
			pos++
		}
		for ; j < len(ns) && ns[j] == s; j++ {
			neg++
		}
		visit(s, pos, neg)
	}
	return pos, neg
}

// rocAUC is the probability that a random delayed flight scores above a random on-time one,
// ties counting one half (the Mann-Whitney U statistic): the trapezoidal area under the ROC
// curve in counts. 0.5 when a class is absent.
func rocAUC(p []float64, y []bool) float64 {
	var area, lastTP, lastFP float64
	pos, neg := sweep(p, y, func(_, tp, fp float64) {
		area += (fp - lastFP) * (tp + lastTP) / 2
		lastTP, lastFP = tp, fp
	})
	if pos == 0 || neg == 0 {
		return 0.5
	}
	return area / (pos * neg)
}

// averagePrecision is the area under the precision-recall curve as scikit-learn's
// average_precision_score computes it: sum over thresholds of (R_k - R_{k-1}) * P_k.
func averagePrecision(p []float64, y []bool) float64 {
	var ap, lastTP float64
	pos, _ := sweep(p, y, func(_, tp, fp float64) {
		ap += (tp - lastTP) * tp / (tp + fp)
		lastTP = tp
	})
	if pos == 0 {
		return 0
	}
	return ap / pos
}

// bestF1Threshold returns the threshold among the scores that maximises F1 (the highest such
// threshold on ties, which flags fewer flights for the same F1).
func bestF1Threshold(p []float64, y []bool) (threshold, best float64) {
	var total float64
	for _, v := range y {
		if v {
			total++
		}
	}
	threshold = 0.5
	sweep(p, y, func(score, tp, fp float64) {
		if f := f1(tp/(tp+fp), tp/total); f > best && score > 0 && score < 1 {
			best, threshold = f, score
		}
	})
	return threshold, best
}
