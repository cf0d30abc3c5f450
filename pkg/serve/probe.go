package serve

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Probe GETs url and succeeds on a 2xx answer within timeout. It is the container health
// check of an image that holds nothing but the delayctl binary (no curl, no shell).
func Probe(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("bad probe URL: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("probe %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("probe %s: %s %s", url, resp.Status, body)
	}
	return nil
}
