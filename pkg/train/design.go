package train

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/delayctl/delayctl/pkg/model"
)

// source is the Dataset column (or pair of columns) a variable is computed from. Every
// variable is a function of one source with a small range, so a feature encodes through a
// table indexed by the source's key instead of a map lookup per row.
type source uint8

const (
	srcMonth source = iota
	srcDayOfMonth
	srcDayOfWeek
	srcMonthDay // month*32 + day of month
	srcDepTime
	srcOrigin
	srcDest
	srcCarrier
)

// sourceOf names the source of a model variable. TestEverySourceReproducesItsVariable checks
// it against pkg/model for every variable.
func sourceOf(variable string) (source, error) {
	switch variable {
	case "month":
		return srcMonth, nil
	case "day_of_month":
		return srcDayOfMonth, nil
	case "day_of_week":
		return srcDayOfWeek, nil
	case "week_of_year", "day_of_year":
		return srcMonthDay, nil
	case "dep_hour", "dep_minute_of_day":
		return srcDepTime, nil
	case "origin":
		return srcOrigin, nil
	case "dest":
		return srcDest, nil
	case "carrier":
		return srcCarrier, nil
	}
	return 0, fmt.Errorf("variable %q has no training source", variable)
}

func (s source) key(d *Dataset, i int) int {
	switch s {
	case srcMonth:
		return int(d.Month[i])
	case srcDayOfMonth:
		return int(d.DayOfMonth[i])
	case srcDayOfWeek:
		return int(d.DayOfWeek[i])
	case srcMonthDay:
		return int(d.Month[i])<<5 | int(d.DayOfMonth[i])
	case srcDepTime:
		return int(d.DepTime[i])
	case srcOrigin:
		return int(d.Origin[i])
	case srcDest:
		return int(d.Dest[i])
	}
	return int(d.Carrier[i])
}

// keys is the size of the source's key range.
func (s source) keys(d *Dataset) int {
	switch s {
	case srcMonth:
		return 13
	case srcDayOfMonth:
		return 32
	case srcDayOfWeek:
		return 8
	case srcMonthDay:
		return 13 << 5
	case srcDepTime:
		return 2401
	case srcOrigin:
		return len(d.dictValues(strOrigin))
	case srcDest:
		return len(d.dictValues(strDest))
	}
	return len(d.dictValues(strCarrier))
}

// flight returns a flight whose source value is key; other fields are zero.
func (s source) flight(d *Dataset, key int) model.Flight {
	var f model.Flight
	switch s {
	case srcMonth:
		f.Month = key
	case srcDayOfMonth:
		f.DayOfMonth = key
	case srcDayOfWeek:
		f.DayOfWeek = key
	case srcMonthDay:
		f.Month, f.DayOfMonth = key>>5, key&31
	case srcDepTime:
		f.CRSDepTime = key
	case srcOrigin:
		f.Origin = d.dictValues(strOrigin)[key]
	case srcDest:
		f.Dest = d.dictValues(strDest)[key]
	default:
		f.Carrier = d.dictValues(strCarrier)[key]
	}
	return f
}

// sourceCounts counts, per key, the rows of idx.
func sourceCounts(d *Dataset, s source, idx []int32) []int {
	c := make([]int, s.keys(d))
	for _, i := range idx {
		c[s.key(d, int(i))]++
	}
	return c
}

// fitEncoders builds the model's features from the rows in idx only (vocabularies, means and
// deviations), so that held-out rows never inform their own encoding.
func fitEncoders(cfg Config, ds *Dataset, idx []int32) (*model.Model, error) {
	m := &model.Model{
		SchemaVersion: model.SchemaVersion,
		Name:          cfg.Name,
		Input:         cfg.Columns,
		Threshold:     0.5,
	}
	counted := map[source][]int{}
	for _, fc := range cfg.Features {
		src, err := sourceOf(fc.Variable)
		if err != nil {
			return nil, err
		}
		counts, ok := counted[src]
		if !ok {
			counts = sourceCounts(ds, src, idx)
			counted[src] = counts
		}
		f := model.Feature{Variable: fc.Variable, Encoding: fc.Encoding}
		switch fc.Encoding {
		case model.OneHot:
			byCat := map[string]int{}
			for key, n := range counts {
				if n > 0 {
					fl := src.flight(ds, key)
					byCat[model.CategoryOf(fc.Variable, &fl)] += n
				}
			}
			for c, n := range byCat {
				if n >= cfg.MinCategoryCount {
					f.Vocabulary = append(f.Vocabulary, c)
				}
			}
			sortCategories(f.Vocabulary, model.IsNumeric(fc.Variable))
			if len(f.Vocabulary) == 0 {
				return nil, fmt.Errorf("feature %s: no category occurs at least min_category_count=%d times", fc.Variable, cfg.MinCategoryCount)
			}
		case model.Standard:
			// Values are integers, so these sums are exact whatever the order.
			var sum, sq, n float64
			for key, c := range counts {
				if c > 0 {
					fl := src.flight(ds, key)
					v := model.ValueOf(fc.Variable, &fl)
					sum += float64(c) * v
					sq += float64(c) * v * v
					n += float64(c)
				}
			}
			f.Mean = sum / n
			f.Std = math.Sqrt(math.Max(sq/n-f.Mean*f.Mean, 0))
			if !(f.Std > 0) {
				return nil, fmt.Errorf("feature %s is constant (%v) in the training rows and cannot be standardised; remove it or encode it %s", fc.Variable, f.Mean, model.OneHot)
			}
		}
		m.Features = append(m.Features, f)
		m.VectorLength += f.Width()
	}
	for _, pair := range cfg.Crosses {
		f, err := crossFeature(ds, idx, pair, cfg.CrossMinCount)
		if err != nil {
			return nil, err
		}
		m.SchemaVersion = model.SchemaVersionCrosses
		m.Features = append(m.Features, f)
		m.VectorLength += f.Width()
	}
	m.Coefficients = make([]float64, m.VectorLength)
	if err := m.Prepare(); err != nil {
		return nil, fmt.Errorf("could not build features: %w", err)
	}
	return m, nil
}

// crossSides returns the sources of a cross's two variables and, per source key, the index
// of its category among the side's categories (sorted as a vocabulary would be).
func crossSides(ds *Dataset, pair []string) (src [2]source, cat [2][]int32, names [2][]string, err error) {
	for s, v := range pair {
		if src[s], err = sourceOf(v); err != nil {
			return src, cat, names, err
		}
		n := src[s].keys(ds)
		byName := map[string]bool{}
		keyCat := make([]string, n)
		for key := 0; key < n; key++ {
			fl := src[s].flight(ds, key)
			keyCat[key] = model.CategoryOf(v, &fl)
			byName[keyCat[key]] = true
		}
		for c := range byName {
			if strings.Contains(c, model.CrossSeparator) {
				return src, cat, names, fmt.Errorf("cross %s: category %q of %s contains %q, which crosses use as separator", strings.Join(pair, model.CrossSeparator), c, v, model.CrossSeparator)
			}
			names[s] = append(names[s], c)
		}
		sortCategories(names[s], model.IsNumeric(v))
		pos := map[string]int32{}
		for j, c := range names[s] {
			pos[c] = int32(j)
		}
		cat[s] = make([]int32, n)
		for key, c := range keyCat {
			cat[s][key] = pos[c]
		}
	}
	return src, cat, names, nil
}

// crossFeature builds a Cross feature from the rows in idx: the pairs seen at least minCount
// times, in order of the first then the second category; every other pair shares the last
// column.
func crossFeature(ds *Dataset, idx []int32, pair []string, minCount int) (model.Feature, error) {
	src, cat, names, err := crossSides(ds, pair)
	if err != nil {
		return model.Feature{}, err
	}
	nb := len(names[1])
	counts := make([]int, len(names[0])*nb)
	for _, i := range idx {
		counts[int(cat[0][src[0].key(ds, int(i))])*nb+int(cat[1][src[1].key(ds, int(i))])]++
	}
	f := model.Feature{Variable: pair[0] + model.CrossSeparator + pair[1], Encoding: model.Cross, Cross: slices.Clone(pair), MinCount: minCount}
	for k, n := range counts {
		if n >= minCount {
			f.Vocabulary = append(f.Vocabulary, names[0][k/nb]+model.CrossSeparator+names[1][k%nb])
		}
	}
	return f, nil
}

// sortCategories orders a vocabulary numerically for integer variables, else lexically, so the
// vector layout is stable across runs.
func sortCategories(v []string, numeric bool) {
	if !numeric {
		sort.Strings(v)
		return
	}
	sort.Slice(v, func(a, b int) bool {
		x, _ := strconv.Atoi(v[a])
		y, _ := strconv.Atoi(v[b])
		return x < y
	})
}

// featureTable encodes one feature of a Dataset row by its source key: the vector column
// (-1 for a category outside the vocabulary) and value. A cross's key combines two sources.
type featureTable struct {
	src  source
	src2 source
	n2   int // keys of src2; 0 for a single source
	col  []int32
	val  []float64
	std  bool
	mean float64
	inv  float64
	raw  []float64 // a standardised feature's variable value per key
}

// tables builds the encoding tables of m's features over ds's dictionaries. The values
// match model.EncodeSparse exactly.
func tables(m *model.Model, ds *Dataset) ([]featureTable, error) {
	out := make([]featureTable, len(m.Features))
	offset := int32(0)
	for k, f := range m.Features {
		if f.Encoding == model.Cross {
			t, err := crossTable(ds, &f, offset)
			if err != nil {
				return nil, err
			}
			out[k] = t
			offset += int32(f.Width())
			continue
		}
		src, err := sourceOf(f.Variable)
		if err != nil {
			return nil, err
		}
		n := src.keys(ds)
		t := featureTable{src: src, col: make([]int32, n), val: make([]float64, n)}
		if f.Encoding == model.Standard {
			t.std, t.mean, t.inv, t.raw = true, f.Mean, 1/f.Std, make([]float64, n)
		}
		pos := map[string]int32{}
		for j, c := range f.Vocabulary {
			pos[c] = int32(j)
		}
		for key := 0; key < n; key++ {
			fl := src.flight(ds, key)
			if t.std {
				v := model.ValueOf(f.Variable, &fl)
				t.col[key], t.raw[key], t.val[key] = offset, v, (v-t.mean)*t.inv
				continue
			}
			t.col[key], t.val[key] = -1, 1
			if j, ok := pos[model.CategoryOf(f.Variable, &fl)]; ok {
				t.col[key] = offset + j
			}
		}
		out[k] = t
		offset += int32(f.Width())
	}
	return out, nil
}

// crossTable maps every pair of source keys to its cross column: the vocabulary's pair, or
// the last column for any other.
func crossTable(ds *Dataset, f *model.Feature, offset int32) (featureTable, error) {
	src, cat, names, err := crossSides(ds, f.Cross)
	if err != nil {
		return featureTable{}, err
	}
	nb := len(names[1])
	pairCol := make([]int32, len(names[0])*nb)
	for j := range pairCol {
		pairCol[j] = offset + int32(len(f.Vocabulary))
	}
	pos := map[string]int{}
	for j, c := range names[0] {
		pos["0"+c] = j
	}
	for j, c := range names[1] {
		pos["1"+c] = j
	}
	for j, entry := range f.Vocabulary {
		a, b, _ := strings.Cut(entry, model.CrossSeparator)
		ia, oka := pos["0"+a]
		ib, okb := pos["1"+b]
		if oka && okb {
			pairCol[ia*nb+ib] = offset + int32(j)
		}
	}
	n1, n2 := src[0].keys(ds), src[1].keys(ds)
	t := featureTable{src: src[0], src2: src[1], n2: n2, col: make([]int32, n1*n2), val: make([]float64, n1*n2)}
	for k1 := 0; k1 < n1; k1++ {
		for k2 := 0; k2 < n2; k2++ {
			t.col[k1*n2+k2] = pairCol[int(cat[0][k1])*nb+int(cat[1][k2])]
			t.val[k1*n2+k2] = 1
		}
	}
	return t, nil
}

// key is the table index of row i.
func (t *featureTable) key(d *Dataset, i int) int {
	if t.n2 == 0 {
		return t.src.key(d, i)
	}
	return t.src.key(d, i)*t.n2 + t.src2.key(d, i)
}

// encoded is the design matrix of a model over the rows idx of a Dataset, computed row by row
// from the tables: it costs no memory per row.
type encoded struct {
	ds      *Dataset
	idx     []int32
	tabs    []featureTable
	p       int
	weights [2]float64
	unit    bool // both weights 1
}

func newEncoded(m *model.Model, ds *Dataset, idx []int32, weights [2]float64) (*encoded, error) {
	t, err := tables(m, ds)
	if err != nil {
		return nil, err
	}
	return &encoded{ds: ds, idx: idx, tabs: t, p: m.NumFeatures(), weights: weights, unit: weights == [2]float64{1, 1}}, nil
}

func (e *encoded) rows() int { return len(e.idx) }
func (e *encoded) cols() int { return e.p }

func (e *encoded) row(r int, buf []model.Entry) ([]model.Entry, float64, float64) {
	i := int(e.idx[r])
	for k := range e.tabs {
		t := &e.tabs[k]
		key := t.key(e.ds, i)
		if c := t.col[key]; c >= 0 {
			buf = append(buf, model.Entry{Col: c, Val: t.val[key]})
		}
	}
	y := 0.0
	if e.ds.Delayed[i] {
		y = 1
	}
	return buf, y, e.weights[int(y)]
}

// logit is model.Logit for row i, term by term in the same order, so it gives the same bits
// as serving the same flight.
func logit(m *model.Model, tabs []featureTable, ds *Dataset, i int) float64 {
	z := m.Intercept
	for k := range tabs {
		t := &tabs[k]
		key := t.key(ds, i)
		c := t.col[key]
		switch {
		case t.std:
			z += m.Coefficients[c] * (t.raw[key] - t.mean) * t.inv
		case c >= 0:
			z += m.Coefficients[c]
		}
	}
	return z
}

// classWeights returns the weights of the negative and positive class.
func classWeights(mode string, ds *Dataset, idx []int32) [2]float64 {
	if mode != "balanced" {
		return [2]float64{1, 1}
	}
	var n [2]float64
	for _, i := range idx {
		if ds.Delayed[i] {
			n[1]++
		} else {
			n[0]++
		}
	}
	total := n[0] + n[1]
	return [2]float64{total / (2 * n[0]), total / (2 * n[1])}
}
