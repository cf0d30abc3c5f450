package serve

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestValidateRefusesBadOptionsNamingTheFlag(t *testing.T) {
	tests := map[string]struct {
		set    func(o *Options)
		expErr string // "" for valid options
	}{
		"The defaults are valid.":                             {set: func(o *Options) {}},
		"A rate limit of 1e9 per second is the most.":         {set: func(o *Options) { o.RateLimit = 1e9 }},
		"A port given by service name is valid.":              {set: func(o *Options) { o.Addr = "localhost:http" }},
		"An IPv6 address is valid.":                           {set: func(o *Options) { o.Addr = "[::1]:8080" }},
		"An infinite rate limit is refused.":                  {set: func(o *Options) { o.RateLimit = math.Inf(1) }, expErr: "--rate-limit +Inf"},
		"A NaN rate limit is refused.":                        {set: func(o *Options) { o.RateLimit = math.NaN() }, expErr: "--rate-limit NaN"},
		"A rate limit past int64 nanoseconds is refused.":     {set: func(o *Options) { o.RateLimit = 9.3e18 }, expErr: "--rate-limit 9.3e+18: want 0 (off) or 1.16e-05 (one a day) to 1e+09"},
		"One request a day is the least rate limit.":          {set: func(o *Options) { o.RateLimit = 1.0 / 86400 }},
		"A rate limit of one request in 31 years is refused.": {set: func(o *Options) { o.RateLimit = 1e-9 }, expErr: "--rate-limit 1e-09: want 0 (off) or 1.16e-05 (one a day) to 1e+09"},
		"A negative rate limit is refused.":                   {set: func(o *Options) { o.RateLimit = -1 }, expErr: "--rate-limit -1"},
		"A burst without a rate is refused.":                  {set: func(o *Options) { o.RateBurst = 5 }, expErr: "--rate-burst 5 needs --rate-limit"},
		"An absurd burst is refused.":                         {set: func(o *Options) { o.RateLimit, o.RateBurst = 10, 1<<40 }, expErr: "--rate-burst 1099511627776"},
		"A zero body limit is refused.":                       {set: func(o *Options) { o.MaxBodyBytes = 0 }, expErr: "--max-body-bytes 0: want 1 to 1073741824"},
		"A 100 GB body limit is refused.":                     {set: func(o *Options) { o.MaxBodyBytes = 100e9 }, expErr: "--max-body-bytes 100000000000"},
		"A negative header limit is refused.":                 {set: func(o *Options) { o.MaxHeaderBytes = -1 }, expErr: "--max-header-bytes -1"},
		"A zero header limit is refused.":                     {set: func(o *Options) { o.MaxHeaderBytes = 0 }, expErr: "--max-header-bytes 0"},
		"A zero batch is refused.":                            {set: func(o *Options) { o.MaxBatch = 0 }, expErr: "--max-batch 0"},
		"A negative in-flight limit is refused.":              {set: func(o *Options) { o.MaxInflight = -3 }, expErr: "--max-inflight -3"},
		"A zero read timeout is refused.":                     {set: func(o *Options) { o.ReadTimeout = 0 }, expErr: "--read-timeout 0s"},
		"A negative write timeout is refused.":                {set: func(o *Options) { o.WriteTimeout = -time.Second }, expErr: "--write-timeout -1s"},
		"A nanosecond header timeout is refused.":             {set: func(o *Options) { o.ReadHeaderTimeout = time.Nanosecond }, expErr: "--read-header-timeout 1ns: want 1ms to 24h0m0s"},
		"A ten-year idle timeout is refused.":                 {set: func(o *Options) { o.IdleTimeout = 87600 * time.Hour }, expErr: "--idle-timeout 87600h0m0s"},
		"A negative drain delay is refused.":                  {set: func(o *Options) { o.DrainDelay = -time.Second }, expErr: "--drain-delay -1s"},
		"A zero watch interval is refused with --watch.":      {set: func(o *Options) { o.Watch, o.WatchInterval = true, 0 }, expErr: "--watch-interval 0s"},
		"A zero watch interval is ignored without --watch":    {set: func(o *Options) { o.WatchInterval = 0 }},
		"An address without a port is refused.":               {set: func(o *Options) { o.Addr = "127.0.0.1" }, expErr: `--addr "127.0.0.1": want host:port`},
		"A port past 65535 is refused.":                       {set: func(o *Options) { o.Addr = "127.0.0.1:99999" }, expErr: `--addr "127.0.0.1:99999": bad port`},
		"A port that is no number or service is refused.":     {set: func(o *Options) { o.Addr = ":eighty" }, expErr: `--addr ":eighty": bad port`},
		"A host that is no IP or DNS name is refused.":        {set: func(o *Options) { o.Addr = "local host:80" }, expErr: `host "local host"`},
		"An unknown log level is refused.":                    {set: func(o *Options) { o.LogLevel = "loud" }, expErr: "--log-level"},
		"Several mistakes are all named.":                     {set: func(o *Options) { o.MaxBatch, o.RateLimit = -1, math.Inf(-1) }, expErr: "--max-batch -1: want 1 to 1000000\n--rate-limit -Inf"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			o := testOptions()
			o.ModelPath = "model.json"
			tt.set(&o)
			err := o.Validate()
			switch {
			case tt.expErr == "" && err != nil:
				t.Fatalf("Validate = %v, want nil", err)
			case tt.expErr != "" && (err == nil || !strings.Contains(err.Error(), tt.expErr)):
				t.Fatalf("Validate = %v, want an error containing %q", err, tt.expErr)
			}
		})
	}
}
