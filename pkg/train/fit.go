package train

import (
	"errors"
	"fmt"
	"github.com/delayctl/delayctl/pkg/model"
	"math"
	"runtime"
	"slices"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/optimize"
)

// rowSet is a design matrix as the solver reads it: row r's non-zero entries (appended to
// buf), its label and its weight. The fit never holds the whole matrix.
type rowSet interface {
	rows() int
	cols() int
	row(r int, buf []model.Entry) (entries []model.Entry, y, w float64)
}

// objective is the L2-regularised mean weighted logistic loss over a design:
//
//	f(b) = (1/W) * sum_i w_i * (log(1+exp(z_i)) - y_i*z_i) + (lambda/2) * sum_{j>=1} b_j^2
//
// with z_i = b_0 + sum_j x_ij*b_j. b_0, the intercept, is not penalised. For lambda > 0 the
// Hessian is positive definite, so f is strictly convex and its minimum unique: Newton's
// method converges to it quadratically, and the gradient norm at the result certifies it.
//
// Every sum over rows is taken in fixed chunks of chunkRows rows, reduced in chunk order
// (reduceChunks), so the value, gradient and Hessian at a point have the same bits at any
// GOMAXPROCS, and so does the fitted model.
type objective struct {
	d      rowSet
	p      int // columns, excluding the intercept
	lambda float64
	sumW   float64

	// One pass over the data yields value, gradient and Hessian together; gonum asks for them
	// separately at the same point, so cache the last point.
	lastX []float64
	value float64
	grad  []float64
	hess  []float64 // packed upper triangle of the (p+1)x(p+1) Hessian, row by row
	acc   []float64 // loss, gradient, packed Hessian
	// Passes counts passes over the rows, for the fit report.
	passes int
}

func newObjective(d rowSet, lambda float64) *objective {
	o := &objective{d: d, p: d.cols(), lambda: lambda}
	var acc [2]float64
	reduceChunks(d.rows(), acc[:1], func(lo, hi int, part []float64) {
		var buf [32]model.Entry
		for r := lo; r < hi; r++ {
			_, _, w := d.row(r, buf[:0])
			part[0] += w
		}
	})
	o.sumW = acc[0]
	return o
}

// lossAndProb returns log(1+exp(z)) and sigmoid(z) from one exponential.
func lossAndProb(z float64) (loss, p float64) {
	e := math.Exp(-math.Abs(z))
	if z > 0 {
		return z + math.Log1p(e), 1 / (1 + e)
	}
	return math.Log1p(e), e / (1 + e)
}

func linear(b []float64, e []model.Entry) float64 {
	z := b[0]
	for _, x := range e {
		z += x.Val * b[x.Col+1]
	}
	return z
}

func (o *objective) penalty(b []float64) float64 {
	return 0.5 * o.lambda * floats.Dot(b[1:], b[1:])
}

// Func is the objective's value. Newton's line search nearly always accepts the full step,
// whose gradient and Hessian gonum asks for next, so one pass computes all three.
func (o *objective) Func(b []float64) float64 {
	o.evalAll(b)
	return o.value
}

// chunkRows is the fixed size of the row chunks whose partial sums are reduced in order. It
// is large enough that adding a chunk's packed Hessian costs less than computing it. Tests
// lower it to spread small data over many chunks.
var chunkRows = 1 << 16

// reduceChunks runs fn over consecutive chunks of chunkRows rows on up to GOMAXPROCS
// goroutines, each into a zeroed partial of len(acc), and adds the partials into acc in chunk
// order. Chunk bounds and the order of additions do not depend on the number of workers, so
// neither does any bit of acc. At most two partials per worker exist at a time.
func reduceChunks(n int, acc []float64, fn func(lo, hi int, part []float64)) {
	clear(acc)
	chunks := (n + chunkRows - 1) / chunkRows
	workers := min(runtime.GOMAXPROCS(0), chunks)
	bounds := func(c int) (int, int) { return c * chunkRows, min((c+1)*chunkRows, n) }
	if workers <= 1 {
		part := make([]float64, len(acc))
		for c := 0; c < chunks; c++ {
			clear(part)
			lo, hi := bounds(c)
			fn(lo, hi, part)
			floats.Add(acc, part)
		}
		return
	}
	type job struct {
		c    int
		part []float64
	}
	free := make(chan []float64, 2*workers)
	for range 2 * workers {
		free <- make([]float64, len(acc))
	}
	done := make([]chan []float64, chunks)
	for c := range done {
		done[c] = make(chan []float64, 1)
	}
	// Partials are handed out in chunk order, so the chunk the reducer waits for always holds
	// one: no deadlock however the workers are scheduled.
	jobs := make(chan job)
	go func() {
		for c := 0; c < chunks; c++ {
			jobs <- job{c, <-free}
		}
		close(jobs)
	}()
	for range workers {
		go func() {
			for j := range jobs {
				clear(j.part)
				lo, hi := bounds(j.c)
				fn(lo, hi, j.part)
				done[j.c] <- j.part
			}
		}()
	}
	for c := 0; c < chunks; c++ {
		part := <-done[c]
		floats.Add(acc, part)
		free <- part
	}
}

// packed is the index of (i, j), i <= j, in a packed upper triangle of order n.
func packed(n, i, j int) int { return i*(2*n-i+1)/2 + j - i }

func (o *objective) evalAll(b []float64) {
	if slices.Equal(b, o.lastX) {
		return
	}
	o.passes++
	n := len(b)
	tri := n * (n + 1) / 2
	if o.acc == nil {
		o.acc = make([]float64, 1+n+tri)
		o.grad = make([]float64, n)
		o.hess = make([]float64, tri)
	}
	reduceChunks(o.d.rows(), o.acc, func(lo, hi int, part []float64) {
		loss, g, h := part[:1], part[1:1+n], part[1+n:]
		var buf [32]model.Entry
		for r := lo; r < hi; r++ {
			e, y, w := o.d.row(r, buf[:0])
			z := linear(b, e)
			l, p := lossAndProb(z)
			loss[0] += w * (l - y*z)
			gr := w * (p - y)
			hr := w * p * (1 - p)
			g[0] += gr
			h[0] += hr
			for _, ea := range e {
				ca := int(ea.Col) + 1
				g[ca] += gr * ea.Val
				h[ca] += hr * ea.Val // row 0 (intercept) x column ca
				hva := hr * ea.Val
				base := packed(n, ca, 0)
				for _, eb := range e {
					if cb := int(eb.Col) + 1; cb >= ca {
						h[base+cb] += hva * eb.Val
					}
				}
			}
		}
	})
	inv := 1 / o.sumW
	copy(o.grad, o.acc[1:1+n])
	copy(o.hess, o.acc[1+n:])
	floats.Scale(inv, o.grad)
	floats.Scale(inv, o.hess)
	for j := 1; j < n; j++ {
		o.grad[j] += o.lambda * b[j]
		o.hess[packed(n, j, j)] += o.lambda
	}
	o.value = o.acc[0]*inv + o.penalty(b)
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
			hess.SetSym(i, j, o.hess[packed(n, i, j)])
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
	Solver       string
	Intercept    float64
	Coefficients []float64
	Iterations   int
	Passes       int     // passes over the rows, line-search trials included
	GradNorm     float64 // infinity norm of the gradient at the solution
	Loss         float64
}

// GradTolerance is the convergence bound on the infinity norm of the (mean-scaled)
// gradient. A fit that stops above it is an error, never a silently accepted model.
const GradTolerance = 1e-8

// ErrNotConverged is wrapped when the solver stops short of GradTolerance.
var ErrNotConverged = errors.New("the fit did not converge")

// fitLogistic minimises the objective with gonum's Newton method (modified Cholesky with a
// line search) from zero coefficients and the prior log-odds as intercept.
func fitLogistic(d rowSet, lambda float64, maxIter int) (*fitResult, error) {
	o := newObjective(d, lambda)
	x0, err := startingPoint(d, d.cols()+1)
	if err != nil {
		return nil, err
	}
	prob := optimize.Problem{Func: o.Func, Grad: o.Grad, Hess: o.Hess}
	settings := &optimize.Settings{
		GradientThreshold: GradTolerance,
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
	if !(gn <= GradTolerance) {
		why := res.Status.String()
		if err != nil {
			why += ": " + err.Error()
		}
		return nil, fmt.Errorf("%w: newton stopped (%s) after %d iterations with gradient norm %.3g > %g; raise training.max_iterations or training.l2",
			ErrNotConverged, why, res.Stats.MajorIterations, gn, GradTolerance)
	}
	return &fitResult{
		Solver:       SolverNewton,
		Intercept:    res.X[0],
		Coefficients: slices.Clone(res.X[1:]),
		Iterations:   res.Stats.MajorIterations,
		Passes:       o.passes,
		GradNorm:     gn,
		Loss:         o.Func(res.X),
	}, nil
}

// denseNewtonMax is the widest design fitted with gonum's dense Newton method. A dense
// Hessian costs (p+1)^2/2 sums per chunk and a Cholesky factorisation of order p+1 per
// iteration; beyond this width (feature crosses) fitLogistic uses newtonCG, whose passes
// cost as many sums as the rows have entries, whatever p.
const denseNewtonMax = 1024

// Solvers, as the fit report names them.
const (
	SolverNewton   = "newton"
	SolverNewtonCG = "newton-cg"
)

// fit picks the solver for the design's width.
func fit(d rowSet, lambda float64, maxIter int) (*fitResult, error) {
	if d.cols()+1 <= denseNewtonMax {
		return fitLogistic(d, lambda, maxIter)
	}
	return newtonCG(d, lambda, maxIter)
}

// funcGradDiag computes the objective, its gradient and the diagonal of its Hessian at b in
// one pass.
func (o *objective) funcGradDiag(b, grad, diag []float64) float64 {
	o.passes++
	n := len(b)
	if len(o.acc) != 1+2*n {
		o.acc = make([]float64, 1+2*n)
	}
	reduceChunks(o.d.rows(), o.acc, func(lo, hi int, part []float64) {
		loss, g, h := part[:1], part[1:1+n], part[1+n:]
		var buf [64]model.Entry
		for r := lo; r < hi; r++ {
			e, y, w := o.d.row(r, buf[:0])
			z := linear(b, e)
			l, p := lossAndProb(z)
			loss[0] += w * (l - y*z)
			gr, hr := w*(p-y), w*p*(1-p)
			g[0] += gr
			h[0] += hr
			for _, x := range e {
				g[x.Col+1] += gr * x.Val
				h[x.Col+1] += hr * x.Val * x.Val
			}
		}
	})
	inv := 1 / o.sumW
	for j := 0; j < n; j++ {
		grad[j] = o.acc[1+j] * inv
		diag[j] = o.acc[1+n+j] * inv
		if j > 0 {
			grad[j] += o.lambda * b[j]
			diag[j] += o.lambda
		}
	}
	return o.acc[0]*inv + o.penalty(b)
}

// hessVec sets hv to the Hessian at b times v, in one pass: the Hessian is never formed.
func (o *objective) hessVec(b, v, hv []float64) {
	o.passes++
	reduceChunks(o.d.rows(), hv, func(lo, hi int, part []float64) {
		var buf [64]model.Entry
		for r := lo; r < hi; r++ {
			e, _, w := o.d.row(r, buf[:0])
			p := sigmoid(linear(b, e))
			dxv := w * p * (1 - p) * linear(v, e)
			part[0] += dxv
			for _, x := range e {
				part[x.Col+1] += dxv * x.Val
			}
		}
	})
	inv := 1 / o.sumW
	hv[0] *= inv
	for j := 1; j < len(hv); j++ {
		hv[j] = hv[j]*inv + o.lambda*v[j]
	}
}

// newtonCG minimises the objective by truncated Newton steps, as LIBLINEAR's newton.cpp:
// each step solves H s = -g by conjugate gradients preconditioned with the Hessian's
// diagonal, to a residual of min(0.5, sqrt(|g|))*|g| (so steps tighten as the gradient
// falls), then backtracks from the full step until the decrease is at least 1 % of the
// predicted one. It stops when the gradient's infinity norm is at most GradTolerance.
func newtonCG(d rowSet, lambda float64, maxIter int) (*fitResult, error) {
	o := newObjective(d, lambda)
	n := d.cols() + 1
	b, err := startingPoint(d, n)
	if err != nil {
		return nil, err
	}
	g, diag := make([]float64, n), make([]float64, n)
	s, r, z, dir, hd := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	trial, tg, tdiag := make([]float64, n), make([]float64, n), make([]float64, n)
	f := o.funcGradDiag(b, g, diag)
	iter := 0
	for ; ; iter++ {
		gn := floats.Norm(g, math.Inf(1))
		if gn <= GradTolerance {
			return &fitResult{Solver: SolverNewtonCG, Intercept: b[0], Coefficients: slices.Clone(b[1:]), Iterations: iter, Passes: o.passes, GradNorm: gn, Loss: f}, nil
		}
		if iter == maxIter {
			return nil, fmt.Errorf("%w: newton-cg reached training.max_iterations=%d with gradient norm %.3g > %g; raise max_iterations or training.l2",
				ErrNotConverged, maxIter, gn, GradTolerance)
		}
		// Preconditioned conjugate gradients for H s = -g.
		clear(s)
		for j := range r {
			r[j] = -g[j]
			z[j] = r[j] / diag[j]
		}
		copy(dir, z)
		rz := floats.Dot(r, z)
		g2 := floats.Norm(g, 2)
		cgTol := math.Min(0.5, math.Sqrt(g2)) * g2
		for k := 0; k < 10*n && floats.Norm(r, 2) > cgTol; k++ {
			o.hessVec(b, dir, hd)
			alpha := rz / floats.Dot(dir, hd)
			floats.AddScaled(s, alpha, dir)
			floats.AddScaled(r, -alpha, hd)
			for j := range z {
				z[j] = r[j] / diag[j]
			}
			next := floats.Dot(r, z)
			floats.AddScaledTo(dir, z, next/rz, dir)
			rz = next
		}
		// Backtracking (Armijo) line search from the full Newton step.
		gs := floats.Dot(g, s)
		step, accepted := 1.0, false
		for range 30 {
			floats.AddScaledTo(trial, b, step, s)
			ft := o.funcGradDiag(trial, tg, tdiag)
			if ft <= f+0.01*step*gs {
				accepted = true
				copy(b, trial)
				copy(g, tg)
				copy(diag, tdiag)
				f = ft
				break
			}
			step /= 2
		}
		if !accepted {
			return nil, fmt.Errorf("%w: newton-cg line search found no decrease after %d iterations (gradient norm %.3g > %g)",
				ErrNotConverged, iter, floats.Norm(g, math.Inf(1)), GradTolerance)
		}
	}
}

// startingPoint is zero coefficients and the weighted prior log-odds as intercept.
func startingPoint(d rowSet, n int) ([]float64, error) {
	if d.rows() == 0 {
		return nil, errors.New("no rows to fit")
	}
	var pt [2]float64
	reduceChunks(d.rows(), pt[:], func(lo, hi int, part []float64) {
		var buf [64]model.Entry
		for r := lo; r < hi; r++ {
			_, y, w := d.row(r, buf[:0])
			part[0] += w * y
			part[1] += w
		}
	})
	pos, tot := pt[0], pt[1]
	if pos == 0 || pos == tot {
		return nil, errors.New("the training rows hold one class only")
	}
	x0 := make([]float64, n)
	x0[0] = math.Log(pos / (tot - pos))
	return x0, nil
}
