package train

import (
	"github.com/delayctl/delayctl/pkg/model"
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/optimize"
)

// design is a sparse (CSR) matrix with labels and optional weights: a rowSet independent of
// the Dataset encoding, for solver tests.
type design struct {
	rowPtr []int
	colIdx []int32
	vals   []float64
	y      []float64
	w      []float64 // nil: every weight is 1
	p      int
}

func (d *design) rows() int { return len(d.y) }
func (d *design) cols() int { return d.p }

func (d *design) row(r int, buf []model.Entry) ([]model.Entry, float64, float64) {
	for k := d.rowPtr[r]; k < d.rowPtr[r+1]; k++ {
		buf = append(buf, model.Entry{Col: d.colIdx[k], Val: d.vals[k]})
	}
	w := 1.0
	if d.w != nil {
		w = d.w[r]
	}
	return buf, d.y[r], w
}

// denseDesign builds a design from dense rows (all entries stored).
func denseDesign(x [][]float64, y []float64, w []float64) *design {
	d := &design{rowPtr: []int{0}, y: y, w: w, p: len(x[0])}
	for _, row := range x {
		for j, v := range row {
			d.colIdx = append(d.colIdx, int32(j))
			d.vals = append(d.vals, v)
		}
		d.rowPtr = append(d.rowPtr, len(d.colIdx))
	}
	return d
}

// referenceLoss is the objective written out independently of fit.go, as a textbook would:
// plain loops over dense rows, log(1+exp(z)) through math.Log and math.Exp.
func referenceLoss(x [][]float64, y, w []float64, lambda float64, b []float64) float64 {
	var loss, sumW float64
	for i, row := range x {
		z := b[0]
		for j, v := range row {
			z += v * b[j+1]
		}
		wi := 1.0
		if w != nil {
			wi = w[i]
		}
		loss += wi * (math.Log(1+math.Exp(z)) - y[i]*z)
		sumW += wi
	}
	var pen float64
	for _, v := range b[1:] {
		pen += v * v
	}
	return loss/sumW + lambda/2*pen
}

func randomProblem(seed uint64, n, p int) ([][]float64, []float64) {
	rng := rand.New(rand.NewPCG(seed, 1))
	x := make([][]float64, n)
	y := make([]float64, n)
	truth := make([]float64, p)
	for j := range truth {
		truth[j] = rng.NormFloat64()
	}
	for i := range x {
		x[i] = make([]float64, p)
		z := -0.5
		for j := range x[i] {
			x[i][j] = rng.NormFloat64()
			z += truth[j] * x[i][j]
		}
		if rng.Float64() < sigmoid(z) {
			y[i] = 1
		}
	}
	return x, y
}

func TestFitMatchesIndependentSolver(t *testing.T) {
	tests := map[string]struct {
		lambda   float64
		weighted bool
	}{
		"Light regularisation.":                {lambda: 1e-3},
		"Strong regularisation.":               {lambda: 0.5},
		"Balanced class weights are honoured.": {lambda: 1e-2, weighted: true},
	}
	for name, tt := range tests {
		for solver, fit := range map[string]func(rowSet, float64, int) (*fitResult, error){SolverNewton: fitLogistic, SolverNewtonCG: newtonCG} {
			t.Run(solver+": "+name, func(t *testing.T) {
				x, y := randomProblem(7, 400, 4)
				var w []float64
				if tt.weighted {
					w = make([]float64, len(y))
					for i := range y {
						w[i] = 1 + 3*y[i]
					}
				}
				got, err := fit(denseDesign(x, y, w), tt.lambda, 100)
				if err != nil {
					t.Fatal(err)
				}
				if got.GradNorm > GradTolerance {
					t.Fatalf("gradient norm at the solution %.3g, want <= %g", got.GradNorm, GradTolerance)
				}
				// Reference: gonum's L-BFGS on the independently written loss, with a numerical
				// gradient, from a different starting point.
				f := func(b []float64) float64 { return referenceLoss(x, y, w, tt.lambda, b) }
				prob := optimize.Problem{Func: f, Grad: func(g, b []float64) { centralGradient(g, f, b) }}
				ref, err := optimize.Minimize(prob, []float64{1, 1, 1, 1, 1}, &optimize.Settings{GradientThreshold: 1e-9}, &optimize.LBFGS{})
				if err != nil {
					t.Fatal(err)
				}
				mine := append([]float64{got.Intercept}, got.Coefficients...)
				if !floats.EqualApprox(mine, ref.X, 1e-5) {
					t.Fatalf("Newton %v\nL-BFGS %v", mine, ref.X)
				}
				if math.Abs(got.Loss-ref.F) > 1e-9 {
					t.Fatalf("loss %v, reference %v", got.Loss, ref.F)
				}
			})
		}
	}
}

func centralGradient(g []float64, f func([]float64) float64, b []float64) {
	const h = 1e-6
	c := append([]float64(nil), b...)
	for j := range b {
		c[j] = b[j] + h
		up := f(c)
		c[j] = b[j] - h
		down := f(c)
		c[j] = b[j]
		g[j] = (up - down) / (2 * h)
	}
}

// With one binary feature and almost no penalty, the maximum-likelihood fit reproduces the
// observed delay rate of each group exactly: intercept = logit(rate when x=0) and
// coefficient = logit(rate when x=1) - intercept. The rates here are 2/8 and 6/8.
func TestFitReproducesGroupRatesByHand(t *testing.T) {
	var x [][]float64
	var y []float64
	for i := 0; i < 8; i++ {
		x = append(x, []float64{0})
		y = append(y, b2f(i < 2))
		x = append(x, []float64{1})
		y = append(y, b2f(i < 6))
	}
	got, err := fitLogistic(denseDesign(x, y, nil), 1e-12, 100)
	if err != nil {
		t.Fatal(err)
	}
	wantB0 := math.Log(0.25 / 0.75)
	wantB1 := math.Log(0.75/0.25) - wantB0
	if math.Abs(got.Intercept-wantB0) > 1e-6 || math.Abs(got.Coefficients[0]-wantB1) > 1e-6 {
		t.Fatalf("intercept %v coefficient %v, want %v %v", got.Intercept, got.Coefficients[0], wantB0, wantB1)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func TestFitRejectsOneClass(t *testing.T) {
	x := [][]float64{{1}, {2}, {3}}
	if _, err := fitLogistic(denseDesign(x, []float64{1, 1, 1}, nil), 1e-3, 10); err == nil {
		t.Fatal("fit accepted rows of one class")
	}
}

func TestGradientMatchesFiniteDifferences(t *testing.T) {
	x, y := randomProblem(3, 50, 3)
	o := newObjective(denseDesign(x, y, nil), 0.1)
	b := []float64{0.3, -0.2, 0.5, 0.1}
	g := make([]float64, 4)
	o.Grad(g, b)
	num := make([]float64, 4)
	centralGradient(num, o.Func, b)
	if !floats.EqualApprox(g, num, 1e-7) {
		t.Fatalf("analytic gradient %v, numerical %v", g, num)
	}
	if v, ref := o.Func(b), referenceLoss(x, y, nil, 0.1, b); math.Abs(v-ref) > 1e-12 {
		t.Fatalf("objective %v, reference %v", v, ref)
	}
}

// On a real one-hot design (hundreds of columns, collinear blocks plus an intercept) the
// Hessian-free solver reaches the dense Newton solution.
func TestNewtonCGMatchesDenseNewtonOnOneHotDesign(t *testing.T) {
	f, err := os.Open(synthFile(t, 20000, 9))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg := DefaultConfig()
	ds, _, err := Clean(f, cfg)
	if err != nil {
		t.Fatal(err)
	}
	idx := seq(ds.Len())
	m, err := fitEncoders(cfg, ds, idx)
	if err != nil {
		t.Fatal(err)
	}
	d, err := newEncoded(m, ds, idx, [2]float64{1, 1})
	if err != nil {
		t.Fatal(err)
	}
	dense, err := fitLogistic(d, cfg.Training.L2, 100)
	if err != nil {
		t.Fatal(err)
	}
	cg, err := newtonCG(d, cfg.Training.L2, 100)
	if err != nil {
		t.Fatal(err)
	}
	a := append([]float64{dense.Intercept}, dense.Coefficients...)
	b := append([]float64{cg.Intercept}, cg.Coefficients...)
	if !floats.EqualApprox(a, b, 1e-6) {
		t.Fatalf("newton and newton-cg differ by %.3g", floats.Distance(a, b, math.Inf(1)))
	}
	t.Logf("%d columns: newton %d iterations, %d passes; newton-cg %d iterations, %d passes",
		d.cols(), dense.Iterations, dense.Passes, cg.Iterations, cg.Passes)
}
