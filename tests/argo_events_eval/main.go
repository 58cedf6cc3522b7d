// argo-events-eval: Argo Events' own code (v1.9.8) deciding what a driftgate Sensor does with an
// Alertmanager webhook, for the test suite. Built by scripts/tools.py from the Go module proxy.
//
// Reads one or more JSON objects on stdin and writes one JSON line per object on stdout:
//
//	{"sensor": <argoproj.io/v1alpha1 Sensor>,
//	 "webhook": {"header": {"Content-Type": ["application/json"]}, "body": <raw webhook payload>},
//	 "dependency": "breach"}                  (optional; default: the Sensor's first dependency)
//
//	-> {"passed": bool, "filter_error": str|null,
//	    "triggers": [{"name": str, "created": <object>|null, "error": str|null}]}
//
// The steps are the ones a webhook EventSource and a Sensor take, each through Argo Events' code:
//
//  1. the event data is events.WebhookEventData{Header, Body, Metadata} marshalled to JSON, as
//     pkg/eventsources/sources/webhook does; the context is what pkg/eventsources sets (type
//     "webhook", source = eventSourceName, subject = eventName, datacontenttype application/json);
//  2. pkg/sensors/dependencies.Filter(event, dep.Filters, dep.FiltersLogicalOperator), as the
//     sensor's filterFunc calls it (an error with passed=false discards the event);
//  3. if it passed, every trigger with a k8s template runs the sensor's triggerOne sequence:
//     triggers.ApplyTemplateParameters, then standard-k8s FetchResource, ApplyResourceParameters
//     and Execute, against fake clients (k8s.io/client-go/{kubernetes,dynamic}/fake). Trigger
//     conditions across several dependencies, rate limits and policies are not modelled.
//
// The fake dynamic client stores the object as given: it does NOT turn metadata.generateName into
// metadata.name (the API server does that), so a created object has generateName and no name.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	k8sfake "k8s.io/client-go/kubernetes/fake"

	"github.com/argoproj/argo-events/pkg/apis/events/v1alpha1"
	"github.com/argoproj/argo-events/pkg/eventsources/events"
	"github.com/argoproj/argo-events/pkg/sensors/dependencies"
	"github.com/argoproj/argo-events/pkg/sensors/triggers"
	standardk8s "github.com/argoproj/argo-events/pkg/sensors/triggers/standard-k8s"
)

type request struct {
	Sensor  v1alpha1.Sensor `json:"sensor"`
	Webhook struct {
		Header http.Header     `json:"header"`
		Body   json.RawMessage `json:"body"`
	} `json:"webhook"`
	Dependency string `json:"dependency"`
}

type triggerResult struct {
	Name    string  `json:"name"`
	Created any     `json:"created"`
	Error   *string `json:"error"`
}

type response struct {
	Passed      bool            `json:"passed"`
	FilterError *string         `json:"filter_error"`
	Triggers    []triggerResult `json:"triggers"`
}

func errString(err error) *string {
	s := err.Error()
	return &s
}

// webhookEvent is the event a webhook EventSource puts on the bus for this request.
func webhookEvent(req *request, dep *v1alpha1.EventDependency) (*v1alpha1.Event, error) {
	body := json.RawMessage(req.Webhook.Body)
	data, err := json.Marshal(&events.WebhookEventData{Header: req.Webhook.Header, Body: &body})
	if err != nil {
		return nil, err
	}
	return &v1alpha1.Event{
		Context: &v1alpha1.EventContext{
			ID:              "driftgate-test",
			Source:          dep.EventSourceName,
			SpecVersion:     "1.0",
			Type:            string(v1alpha1.WebhookEvent),
			DataContentType: v1alpha1.MediaTypeJSON,
			Subject:         dep.EventName,
			Time:            metav1.Time{Time: time.Now().UTC()},
		},
		Data: data,
	}, nil
}

// runTrigger is the sensor's triggerOne for one k8s trigger (minus policy), on fake clients.
func runTrigger(ctx context.Context, sensor *v1alpha1.Sensor, trigger v1alpha1.Trigger, evs map[string]*v1alpha1.Event) (any, error) {
	if err := triggers.ApplyTemplateParameters(evs, &trigger); err != nil { // replaces trigger.Template
		return nil, fmt.Errorf("template parameters: %w", err)
	}
	// NewSimpleDynamicClient needs the list kind of every resource it may list; the Job trigger's.
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{{Group: "batch", Version: "v1", Resource: "jobs"}: "JobList"})
	impl := standardk8s.NewStandardK8sTrigger(k8sfake.NewSimpleClientset(), dyn, sensor, &trigger, zap.NewNop().Sugar())
	obj, err := impl.FetchResource(ctx)
	if err != nil {
		return nil, fmt.Errorf("fetch resource: %w", err)
	}
	obj, err = impl.ApplyResourceParameters(evs, obj)
	if err != nil {
		return nil, fmt.Errorf("resource parameters: %w", err)
	}
	created, err := impl.Execute(ctx, evs, obj)
	if err != nil {
		return nil, fmt.Errorf("execute: %w", err)
	}
	if u, ok := created.(*unstructured.Unstructured); ok && u != nil {
		return u.Object, nil
	}
	return created, nil
}

func decide(req *request) (*response, error) {
	deps := req.Sensor.Spec.Dependencies
	if len(deps) == 0 {
		return nil, errors.New("the sensor has no dependencies")
	}
	dep := &deps[0]
	if req.Dependency != "" {
		dep = nil
		for i := range deps {
			if deps[i].Name == req.Dependency {
				dep = &deps[i]
			}
		}
		if dep == nil {
			return nil, fmt.Errorf("no dependency %q in the sensor", req.Dependency)
		}
	}
	if dep.Transform != nil {
		return nil, errors.New("dependency transforms are not modelled by this driver")
	}
	event, err := webhookEvent(req, dep)
	if err != nil {
		return nil, err
	}
	out := &response{Triggers: []triggerResult{}}
	passed, ferr := dependencies.Filter(event, dep.Filters, dep.FiltersLogicalOperator)
	out.Passed = passed
	if ferr != nil {
		out.FilterError = errString(ferr)
	}
	if !passed {
		return out, nil
	}
	// The sensor keys the events it hands to the triggers by dependency name.
	evs := map[string]*v1alpha1.Event{dep.Name: event}
	for _, trigger := range req.Sensor.Spec.Triggers {
		if trigger.Template == nil || trigger.Template.K8s == nil {
			continue
		}
		res := triggerResult{Name: trigger.Template.Name}
		created, err := runTrigger(context.Background(), &req.Sensor, *trigger.DeepCopy(), evs)
		if err != nil {
			res.Error = errString(err)
		} else {
			res.Created = created
		}
		out.Triggers = append(out.Triggers, res)
	}
	return out, nil
}

func main() {
	in := json.NewDecoder(os.Stdin)
	out := json.NewEncoder(os.Stdout)
	// Argo Events prints some diagnostics with fmt.Printf (e.g. ResolveParamValue's "failed to get value
	// by key"): send them to stderr, and keep stdout for the decisions.
	os.Stdout = os.Stderr
	for {
		var req request
		if err := in.Decode(&req); err == io.EOF {
			return
		} else if err != nil {
			fmt.Fprintln(os.Stderr, "bad request:", err)
			os.Exit(2)
		}
		res, err := decide(&req)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bad request:", err)
			os.Exit(2)
		}
		_ = out.Encode(res)
	}
}
