package train

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/optimize"
)

// objective is the L2-regularised mean weighted logistic loss over a sparse design:
//
//	f(b) = (1/W) * sum_i w_i * (log(1+exp(z_i)) - y_i*z_i) + (lambda/2) * sum_{j>=1} b_j^2
//
// with z_i = b_0 + sum_j x_ij*b_j. b_0, the intercept, is not penalised. For lambda > 0 the
// Hessian is positive definite, so f is strictly convex and its minimum unique: Newton's
// method converges to it quadratically, and the gradient norm at the result certifies it.
type objective struct {
	d      *design
	lambda float64
	sumW   float64

	// One pass over the data yields value, gradient and Hessian together; gonum asks for them
	// separately at the same point, so cache the last point.
	lastX []float64
	value float64
	grad  []float64
	hess  []float64 // upper triangle of the dense (p+1)x(p+1) Hessian, row-major
	parts []partial
	evals int
}

func newObjective(d *design, lambda float64) *objective {
	o := &objective{d: d, lambda: lambda}
	if d.w == nil {
		o.sumW = float64(d.rows())
	} else {
		o.sumW = floats.Sum(d.w)
	}
	return o
}

// log1pExp computes log(1+exp(z)) without overflow.
func log1pExp(z float64) float64 {
	if z > 0 {
		return z + math.Log1p(math.Exp(-z))
	}
	return math.Log1p(math.Exp(z))
}

func (o *objective) linear(b []float64, r int) float64 {
	z := b[0]
	for k := o.d.rowPtr[r]; k < o.d.rowPtr[r+1]; k++ {
		z += o.d.vals[k] * b[o.d.cols[k]+1]
	}
	return z
}

func (o *objective) weight(r int) float64 {
	if o.d.w == nil {
		return 1
	}
	return o.d.w[r]
}

func (o *objective) penalty(b []float64) float64 {
	return 0.5 * o.lambda * floats.Dot(b[1:], b[1:])
}

// Func is the objective's value only (line searches call it often).
func (o *objective) Func(b []float64) float64 {
	if slices.Equal(b, o.lastX) {
		return o.value
	}
	parts := o.parallel(func(lo, hi int, _ *partial) float64 {
		var loss float64
		for r := lo; r < hi; r++ {
			z := o.linear(b, r)
			loss += o.weight(r) * (log1pExp(z) - o.d.y[r]*z)
		}
		return loss
	}, false)
	return sum(parts)/o.sumW + o.penalty(b)
}

// partial is one worker's share of the gradient and Hessian.
type partial struct {
	grad, hess []float64
}

// parallel splits the rows into one contiguous chunk per CPU and runs fn on each. Sums are
// combined in chunk order, so results do not depend on scheduling.
func (o *objective) parallel(fn func(lo, hi int, p *partial) float64, withDerivs bool) []float64 {
	n := o.d.rows()
	workers := min(runtime.GOMAXPROCS(0), max(1, n/20000))
	out := make([]float64, workers)
	if withDerivs && len(o.parts) != workers {
		o.parts = make([]partial, workers)
		for i := range o.parts {
			o.parts[i] = partial{grad: make([]float64, o.d.p+1), hess: make([]float64, (o.d.p+1)*(o.d.p+1))}
		}
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		lo, hi := n*w/workers, n*(w+1)/workers
		var p *partial
		if withDerivs {
			p = &o.parts[w]
		}
		wg.Go(func() { out[w] = fn(lo, hi, p) })
	}
	wg.Wait()
	return out
}

func sum(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s
}

func (o *objective) evalAll(b []float64) {
	if slices.Equal(b, o.lastX) {
		return
	}
	o.evals++
	n := len(b)
	d := o.d
	losses := o.parallel(func(lo, hi int, pt *partial) float64 {
		g, h := pt.grad, pt.hess
		clear(g)
		clear(h)
		var loss float64
		for r := lo; r < hi; r++ {
			z := o.linear(b, r)
			w := o.weight(r)
			loss += w * (log1pExp(z) - d.y[r]*z)
			p := sigmoid(z)
			gr := w * (p - d.y[r])
			hr := w * p * (1 - p)
			g[0] += gr
			h[0] += hr
			rlo, rhi := d.rowPtr[r], d.rowPtr[r+1]
			for k := rlo; k < rhi; k++ {
				ca, va := int(d.cols[k])+1, d.vals[k]
				g[ca] += gr * va
				h[ca] += hr * va // row 0 (intercept) x column ca
				hva := hr * va
				row := h[ca*n:]
				for l := rlo; l < rhi; l++ {
					if cb := int(d.cols[l]) + 1; cb >= ca {
						row[cb] += hva * d.vals[l]
					}
				}
			}
		}
		return loss
	}, true)
	if o.grad == nil {
		o.grad = make([]float64, n)
		o.hess = make([]float64, n*n)
	}
	copy(o.grad, o.parts[0].grad)
	copy(o.hess, o.parts[0].hess)
	for _, pt := range o.parts[1:] {
		floats.Add(o.grad, pt.grad)
		floats.Add(o.hess, pt.hess)
	}
	g, h := o.grad, o.hess
	inv := 1 / o.sumW
	floats.Scale(inv, g)
	floats.Scale(inv, h)
	for j := 1; j < n; j++ {
		g[j] += o.lambda * b[j]
		h[j*n+j] += o.lambda
	}
	o.value = sum(losses)*inv + o.penalty(b)
	o.lastX = append(o.lastX[:0], b...)
}

// Grad is the objective's gradient.
func (o *objective) Grad(grad, b []float64) {
	o.evalAll(b)
	copy(grad, o.grad)
}

// Hess is the objective's Hessian.
func (o *objective) Hess(hess *mat.SymDense, b []float64) {
	o.evalAll(b)
	n := len(b)
	for i := 0; i < n; i++ {
		for j := i; j < n; j++ {
			hess.SetSym(i, j, o.hess[i*n+j])
		}
	}
}

func sigmoid(z float64) float64 {
	if z >= 0 {
		return 1 / (1 + math.Exp(-z))
	}
	e := math.Exp(z)
	return e / (1 + e)
}

// fitResult is a solved regression.
type fitResult struct {
	Intercept    float64
	Coefficients []float64
	Iterations   int
	GradNorm     float64 // infinity norm of the gradient at the solution
	Loss         float64
}

// gradTolerance is the convergence bound on the infinity norm of the (mean-scaled) gradient.
const gradTolerance = 1e-9

// fitLogistic minimises the objective with gonum's Newton method (modified Cholesky with a
// line search) from zero coefficients and the prior log-odds as intercept.
func fitLogistic(d *design, lambda float64, maxIter int) (*fitResult, error) {
	if d.rows() == 0 {
		return nil, errors.New("no rows to fit")
	}
	o := newObjective(d, lambda)
	x0 := make([]float64, d.p+1)
	var pos, tot float64
	for r := 0; r < d.rows(); r++ {
		pos += o.weight(r) * d.y[r]
		tot += o.weight(r)
	}
	if pos == 0 || pos == tot {
		return nil, errors.New("the training rows hold one class only")
	}
	x0[0] = math.Log(pos / (tot - pos))
	prob := optimize.Problem{Func: o.Func, Grad: o.Grad, Hess: o.Hess}
	settings := &optimize.Settings{
		GradientThreshold: gradTolerance,
		MajorIterations:   maxIter,
		Converger:         &optimize.FunctionConverge{Absolute: 0, Relative: 0, Iterations: maxIter},
	}
	res, err := optimize.Minimize(prob, x0, settings, &optimize.Newton{})
	if err != nil && res == nil {
		return nil, fmt.Errorf("newton solver failed: %w", err)
	}
	grad := make([]float64, len(res.X))
	o.Grad(grad, res.X)
	gn := floats.Norm(grad, math.Inf(1))
	// Near the optimum the line search may stop on a float64 round-off plateau with the
	// gradient already negligible; accept that, but never an unconverged point.
	if gn > 1e-6 {
		return nil, fmt.Errorf("newton solver stopped (%v) after %d iterations with gradient norm %.3g > 1e-6: %v", res.Status, res.Stats.MajorIterations, gn, err)
	}
	return &fitResult{
		Intercept:    res.X[0],
		Coefficients: slices.Clone(res.X[1:]),
		Iterations:   res.Stats.MajorIterations,
		GradNorm:     gn,
		Loss:         o.Func(res.X),
	}, nil
}
