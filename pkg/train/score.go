package train

import (
	"encoding/json"
	"fmt"
)

// Score evaluates probabilities p against labels y at threshold t, as training evaluates its
// held-out rows; prior is the delay rate the majority-class baseline predicts. Later
// evaluations (delayctl evaluate) use it so their figures compare with the training ones.
func Score(p []float64, y []bool, t, prior float64) Metrics { return evaluate(p, y, t, prior) }

// ConfigFromModel returns the pipeline config recorded in a model's training record, so a
// later CSV is read the way the training CSV was; DefaultConfig fills fields it lacks.
func ConfigFromModel(raw []byte) (Config, error) {
	cfg := DefaultConfig()
	if len(raw) == 0 {
		return cfg, nil
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return cfg, fmt.Errorf("the model's training config: %w", err)
	}
	return cfg, cfg.Validate()
}
