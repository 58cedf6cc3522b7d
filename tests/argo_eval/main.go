// argo-eval: Argo Rollouts' own code deciding driftgate's metrics, for the test suite.
//
// Reads JSON lines on stdin and writes one JSON line per input on stdout:
//
//	{"metric": <Argo v1alpha1.Metric>, "result": <number | [number|"NaN", ...] | "NaN">}
//	    -> utils/evaluate.EvaluateResult on the result as Argo's Prometheus provider builds it
//	       (a vector is a []float64, a scalar a float64)
//	{"metric": <Argo v1alpha1.Metric with its args substituted>, "measure": true}
//	    -> Argo's Prometheus provider (metricproviders/prometheus) runs the metric's query against
//	       the server in metric.provider.prometheus.address and decides the measurement
//
// The output is {"phase": "Successful|Failed|Inconclusive|Error", "value": "...", "message": "..."}.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"

	log "github.com/sirupsen/logrus"

	"github.com/argoproj/argo-rollouts/metricproviders/prometheus"
	"github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"github.com/argoproj/argo-rollouts/utils/evaluate"
)

type request struct {
	Metric  v1alpha1.Metric `json:"metric"`
	Result  json.RawMessage `json:"result"`
	Measure bool            `json:"measure"`
}

type response struct {
	Phase   string `json:"phase"`
	Value   string `json:"value"`
	Message string `json:"message"`
}

func number(raw any) (float64, error) {
	switch v := raw.(type) {
	case float64:
		return v, nil
	case string:
		if v == "NaN" {
			return math.NaN(), nil
		}
		if v == "+Inf" {
			return math.Inf(1), nil
		}
		if v == "-Inf" {
			return math.Inf(-1), nil
		}
	}
	return 0, fmt.Errorf("not a number: %v", raw)
}

// result decodes the test's value the way Argo's Prometheus provider hands it to EvaluateResult.
func result(raw json.RawMessage) (any, error) {
	var decoded any
	if err := json.Unmarshal(raw, &decoded); err != nil {
		return nil, err
	}
	if list, ok := decoded.([]any); ok {
		out := make([]float64, 0, len(list))
		for _, item := range list {
			f, err := number(item)
			if err != nil {
				return nil, err
			}
			out = append(out, f)
		}
		return out, nil
	}
	return number(decoded)
}

func decide(req request) response {
	logCtx := *log.WithField("driftgate", "argo-eval")
	if req.Measure {
		api, err := prometheus.NewPrometheusAPI(req.Metric)
		if err != nil {
			return response{Phase: "Error", Message: err.Error()}
		}
		provider, err := prometheus.NewPrometheusProvider(api, logCtx, req.Metric)
		if err != nil {
			return response{Phase: "Error", Message: err.Error()}
		}
		m := provider.Run(&v1alpha1.AnalysisRun{}, req.Metric)
		return response{Phase: string(m.Phase), Value: m.Value, Message: m.Message}
	}
	value, err := result(req.Result)
	if err != nil {
		return response{Phase: "Error", Message: err.Error()}
	}
	phase, err := evaluate.EvaluateResult(value, req.Metric, logCtx)
	out := response{Phase: string(phase)}
	if err != nil {
		out.Message = err.Error()
	}
	return out
}

func main() {
	log.SetLevel(log.PanicLevel)
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 64<<20)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var req request
		if err := json.Unmarshal(in.Bytes(), &req); err != nil {
			_ = out.Encode(response{Phase: "Error", Message: "bad request: " + err.Error()})
			continue
		}
		_ = out.Encode(decide(req))
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
