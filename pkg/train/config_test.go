package train

import (
	"strings"
	"testing"
)

func TestShippedConfigMatchesDefault(t *testing.T) {
	cfg, err := LoadConfig("../../configs/train.yaml")
	if err != nil {
		t.Fatal(err)
	}
	def := DefaultConfig()
	def.Missing = map[string]string{}
	a, b := mustJSON(t, cfg), mustJSON(t, def)
	if a != b {
		t.Fatalf("configs/train.yaml differs from DefaultConfig:\n%s\n%s", a, b)
	}
}

func TestDecodeConfigErrorsNameFieldAndLine(t *testing.T) {
	tests := map[string]struct {
		in      string
		wantErr string
	}{
		"An SLO file given as a train config is named as such.": {
			in:      "version: delayctl.slo/v1\n",
			wantErr: "this is an SLO file (slo --slo), not a train pipeline config",
		},
		"An unknown field is named with its line.": {
			in:      "version: delayctl/v1\ntraining:\n  l2: 1e-4\n  learning_rate: 3\n",
			wantErr: "line 4: field learning_rate not found",
		},
		"A negative L2 names the field and line.": {
			in:      "version: delayctl/v1\ntraining:\n  l2: -1\n",
			wantErr: "line 3: training.l2: must be a positive number",
		},
		"A text where a number goes is a type error with a line.": {
			in:      "version: delayctl/v1\ntraining:\n  seed: soon\n",
			wantErr: "line 3: cannot unmarshal !!str `soon`",
		},
		"An unknown variable lists the known ones.": {
			in:      "version: delayctl/v1\nfeatures:\n  - {variable: month, encoding: onehot}\n  - {variable: wind, encoding: onehot}\n",
			wantErr: `line 4: features.1.variable: unknown variable "wind"; known: carrier, day_of_month`,
		},
		"Standardising a string is refused.": {
			in:      "version: delayctl/v1\nfeatures:\n  - {variable: origin, encoding: standard}\n",
			wantErr: `line 3: features.0.encoding: "origin" is a category`,
		},
		"A threshold of 1.5 is refused.": {
			in:      "version: delayctl/v1\ntraining:\n  threshold: 1.5\n",
			wantErr: `line 3: training.threshold: must be a probability in (0, 1) or "best_f1", got "1.5"`,
		},
		"Median of a string field is refused.": {
			in:      "version: delayctl/v1\nmissing:\n  origin: median\n",
			wantErr: "line 3: missing.origin: median needs a numeric field; use mode",
		},
		"A wrong version is named.": {
			in:      "version: v2\n",
			wantErr: `line 1: version: must be "delayctl/v1", got "v2"`,
		},
		"A label with both forms is refused.": {
			in:      "version: delayctl/v1\nlabel:\n  column: ARR_DEL15\n  delay_minutes_column: ARR_DELAY\n  threshold_minutes: 15\n",
			wantErr: "line 3: label: set only one of column and delay_minutes_column",
		},
		"An empty document says so.": {in: "", wantErr: "config is empty"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeConfig(strings.NewReader(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestPartialConfigKeepsDefaults(t *testing.T) {
	cfg, err := DecodeConfig(strings.NewReader("version: delayctl/v1\ntraining:\n  cv_folds: 5\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Training.CVFolds != 5 || cfg.Training.L2 != 1e-3 || cfg.Label.Column != "ARR_DEL15" || len(cfg.Features) != 8 || len(cfg.Crosses) != 2 {
		t.Fatalf("partial config lost defaults: %+v", cfg)
	}
}

func TestCrossesConfig(t *testing.T) {
	tests := map[string]struct {
		yaml        string
		wantCrosses int
		wantErr     string
	}{
		"Own features without crosses mean no crosses.": {
			yaml: "features:\n  - {variable: origin, encoding: onehot}\n", wantCrosses: 0,
		},
		"Own crosses replace the default ones.": {
			yaml: "crosses: [[dest, dep_hour]]\n", wantCrosses: 1,
		},
		"A cross of three variables names its line.": {
			yaml: "crosses:\n  - [origin, dest, month]\n", wantErr: "line 3: crosses.0: a cross names two variables",
		},
		"An unknown variable is named.": {
			yaml: "crosses: [[origin, hour]]\n", wantErr: `unknown variable "hour"`,
		},
		"A cross listed twice is refused.": {
			yaml: "crosses: [[origin, dest], [dest, origin]]\n", wantErr: "crosses.1: crosses dest and origin again",
		},
		"A minimum count below 1 is refused.": {
			yaml: "cross_min_count: 0\n", wantErr: "cross_min_count: must be >= 1 with crosses",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			cfg, err := DecodeConfig(strings.NewReader("version: delayctl/v1\n" + tt.yaml))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(cfg.Crosses) != tt.wantCrosses {
				t.Fatalf("crosses %v, want %d", cfg.Crosses, tt.wantCrosses)
			}
		})
	}
}
