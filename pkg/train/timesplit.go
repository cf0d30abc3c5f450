package train

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/gonum/stat"
)

// Where the threshold is chosen when it is best_f1 (training.threshold_split).
const (
	SplitRandom = "random" // a stratified random slice of the training rows
	SplitTime   = "time"   // the latest slice of the training rows, in date order
)

// DefaultTimeHoldout is the share of the latest rows the time-ordered holdout tests on.
const DefaultTimeHoldout = 0.2

// TimeHoldout is the out-of-time evaluation: a model fitted on the earlier rows, scored on
// the latest ones. It is what production looks like (the model always predicts days it has
// not seen), so it is the figure to expect from a deployed model; the random split lets the
// model learn each test day's weather from the training rows of the same day.
type TimeHoldout struct {
	// Fraction is the share of rows, cut at a day boundary, held out at the end.
	Fraction float64 `json:"fraction"`
	// TrainPeriod and TestPeriod are the first and last dates on each side, "2016-01-01..2016-10-20".
	TrainPeriod string `json:"train_period"`
	TestPeriod  string `json:"test_period"`
	TrainRows   int    `json:"train_rows"`
	// OrderedBy says how rows were dated: by year, month and day, or by month and day only
	// (no year column: the data is taken to be one year).
	OrderedBy string `json:"ordered_by"`
	// Metrics score the earlier rows' model on the later rows at the final model's threshold.
	Metrics Metrics `json:"metrics"`
}

// TimeCV is time-blocked cross-validation (scikit-learn's TimeSeriesSplit): rows in date
// order cut into k+1 blocks at day boundaries; fold i trains on blocks 0..i and tests on
// block i+1.
type TimeCV struct {
	Folds       int       `json:"folds"`
	ROCAUC      []float64 `json:"roc_auc"`
	ROCAUCMean  float64   `json:"roc_auc_mean"`
	ROCAUCStd   float64   `json:"roc_auc_std"`
	TestPeriods []string  `json:"test_periods"`
}

// dayKey orders rows by date: year*372 + (month-1)*31 + day, with year 0 when unknown.
func dayKey(ds *Dataset, i int32) int {
	y := 0
	if ds.Years != nil {
		y = int(ds.Years[i])
	}
	return y*372 + (int(ds.Month[i])-1)*31 + int(ds.DayOfMonth[i])
}

func keyDate(k int) string {
	y, r := k/372, k%372
	if r == 0 {
		y, r = y-1, 372
	}
	md := fmt.Sprintf("%02d-%02d", (r-1)/31+1, (r-1)%31+1)
	if y == 0 {
		return md
	}
	return fmt.Sprintf("%04d-%s", y, md)
}

func orderedBy(ds *Dataset) string {
	if ds.Years != nil {
		return "year, month, day"
	}
	return "month, day (no year column: taken as one year)"
}

// byDate returns idx sorted by date, stably (rows of one day keep their file order).
func byDate(ds *Dataset, idx []int32) []int32 {
	s := append([]int32(nil), idx...)
	sort.SliceStable(s, func(a, b int) bool { return dayKey(ds, s[a]) < dayKey(ds, s[b]) })
	return s
}

// cutAtDay returns the position in sorted (date-ordered) rows nearest to pos that starts a
// new day, so no day is split between the two sides; -1 when the rows hold a single day.
func cutAtDay(ds *Dataset, sorted []int32, pos int) int {
	pos = min(max(pos, 1), len(sorted)-1)
	for up, down := pos, pos; up < len(sorted) || down > 0; up, down = up+1, down-1 {
		if up < len(sorted) && dayKey(ds, sorted[up]) != dayKey(ds, sorted[up-1]) {
			return up
		}
		if down > 0 && down < len(sorted) && dayKey(ds, sorted[down]) != dayKey(ds, sorted[down-1]) {
			return down
		}
	}
	return -1
}

func period(ds *Dataset, sorted []int32) string {
	return keyDate(dayKey(ds, sorted[0])) + ".." + keyDate(dayKey(ds, sorted[len(sorted)-1]))
}

// timeSplit holds out the latest frac of idx, cut at a day boundary.
func timeSplit(ds *Dataset, idx []int32, frac float64) (earlier, later []int32, err error) {
	s := byDate(ds, idx)
	cut := cutAtDay(ds, s, int(float64(len(s))*(1-frac)+0.5))
	if cut < 0 {
		return nil, nil, fmt.Errorf("a time-ordered split needs rows from at least two days; all %d rows are from %s", len(s), keyDate(dayKey(ds, s[0])))
	}
	return s[:cut], s[cut:], nil
}

// validationSplit returns the rows that fit the threshold-selection model and the rows that
// choose the threshold, by training.threshold_split.
func validationSplit(cfg Config, ds *Dataset, trainIdx []int32, rng *rand.Rand) (fit, val []int32, method string, err error) {
	t := cfg.Training
	if t.ThresholdSplit == SplitTime {
		fit, val, err = timeSplit(ds, trainIdx, t.ValidationFraction)
		return fit, val, "best F1 on the latest dates of the training rows", err
	}
	fit, val = stratifiedSplit(ds.Delayed, trainIdx, t.ValidationFraction, rng)
	return fit, val, "best F1 on a validation split of the training rows", nil
}

// timeEvaluate fills met.TimeHoldout and met.TimeCV as the config asks.
func timeEvaluate(ctx context.Context, cfg Config, ds *Dataset, met *Metrics, log *slog.Logger) error {
	t := cfg.Training
	if t.TimeHoldout > 0 {
		earlier, later, err := timeSplit(ds, seq(ds.Len()), t.TimeHoldout)
		if err != nil {
			return fmt.Errorf("time holdout: %w", err)
		}
		m, _, err := fitOn(cfg, ds, earlier)
		if err != nil {
			return fmt.Errorf("time holdout fit: %w", err)
		}
		prior := float64(countTrue(ds, earlier)) / float64(len(earlier))
		laterP, err := predictRows(m, ds, later)
		if err != nil {
			return fmt.Errorf("time holdout: %w", err)
		}
		tm := evaluate(laterP, labels(ds, later), met.Threshold, prior)
		tm.ThresholdMethod = met.ThresholdMethod
		met.TimeHoldout = &TimeHoldout{
			Fraction: t.TimeHoldout, TrainPeriod: period(ds, earlier), TestPeriod: period(ds, later),
			TrainRows: len(earlier), OrderedBy: orderedBy(ds), Metrics: tm,
		}
		log.Info("time holdout", "train", met.TimeHoldout.TrainPeriod, "test", met.TimeHoldout.TestPeriod, "roc_auc", tm.ROCAUC)
	}
	if k := t.TimeCVFolds; k > 1 {
		s := byDate(ds, seq(ds.Len()))
		cuts := []int{0}
		for b := 1; b <= k; b++ {
			c := cutAtDay(ds, s, len(s)*b/(k+1))
			if c <= cuts[len(cuts)-1] {
				return fmt.Errorf("time-blocked cross-validation: %d rows over too few days for %d folds", len(s), k)
			}
			cuts = append(cuts, c)
		}
		cuts = append(cuts, len(s))
		cv := &TimeCV{Folds: k}
		for i := 1; i <= k; i++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			trainIdx, testIdx := s[:cuts[i]], s[cuts[i]:cuts[i+1]]
			m, _, err := fitOn(cfg, ds, trainIdx)
			if err != nil {
				return fmt.Errorf("time-blocked cross-validation fold %d: %w", i, err)
			}
			testP, err := predictRows(m, ds, testIdx)
			if err != nil {
				return fmt.Errorf("time-blocked cross-validation fold %d: %w", i, err)
			}
			auc := rocAUC(testP, labels(ds, testIdx))
			cv.ROCAUC = append(cv.ROCAUC, auc)
			cv.TestPeriods = append(cv.TestPeriods, period(ds, testIdx))
			log.Info("time-blocked cross-validation", "fold", i, "of", k, "roc_auc", auc)
		}
		cv.ROCAUCMean, cv.ROCAUCStd = stat.PopMeanStdDev(cv.ROCAUC, nil)
		met.TimeCV = cv
	}
	return nil
}

// setYearColumn finds the configured year column in a file's header. A file without one
// gives up on years for the whole data set (rows are then ordered by month and day).
func (c *cleaner) setYearColumn(header []string) {
	c.yearCol = -1
	if y := c.cfg.Columns.Year; y != "" {
		for i, h := range header {
			if strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")) == y {
				c.yearCol = i
			}
		}
	}
	if c.yearCol < 0 {
		c.dropYears()
	}
}

// addYear records a kept row's year, or gives up on years for the whole data set when one
// is missing or out of range.
func (c *cleaner) addYear(rec []string) {
	if c.noYears {
		return
	}
	y, err := strconv.Atoi(strings.TrimSpace(cellAt(rec, c.yearCol)))
	if err != nil || y < 1 || y > math.MaxUint16 {
		c.dropYears()
		return
	}
	c.ds.Years = append(c.ds.Years, uint16(y))
}

func (c *cleaner) dropYears() { c.noYears, c.ds.Years = true, nil }

// applyTime lays the time-evaluation overrides of the command line over the config.
func (o *Options) applyTime(cfg *Config) {
	if o.TimeHoldoutSet {
		cfg.Training.TimeHoldout = o.TimeHoldout
	}
	if o.TimeCVSet {
		cfg.Training.TimeCVFolds = o.TimeCVFolds
	}
	if o.ThresholdSplit != "" {
		cfg.Training.ThresholdSplit = o.ThresholdSplit
	}
}
