package drill

import (
	"fmt"
	"regexp"

	"github.com/goccy/go-yaml"

	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/drillreport"
)

// PrepareConfig rewrites a godwit config for a drill: only the drill's flow
// is kept, restricted to the drill topics and groups (TopicPrefix), so
// nothing the drill does (replicating, failing over, moving groups) can
// touch production topics or groups; http.listen moves to a free port.
// The config's cutover.command is replaced by cutoverCommand (empty: no
// hook): a production hook would move production clients during a drill.
// The drill reports key is left out (the drill's replicator does not
// export them). flowName "" picks the first enabled flow. It returns the parsed config,
// the flow and the YAML (for a replicator process).
func PrepareConfig(path string, data []byte, flowName, cutoverCommand string) (*config.Config, *config.Flow, []byte, error) {
	orig, err := config.Parse(path, data)
	if err != nil {
		return nil, nil, nil, err
	}
	var names []string
	if flowName != "" {
		names = []string{flowName}
	}
	sel, err := orig.SelectFlows(names)
	if err != nil {
		return nil, nil, nil, err
	}
	if len(sel) == 0 {
		return nil, nil, nil, fmt.Errorf("config %s has no enabled flow to drill", path)
	}
	name := sel[0].Name

	var raw map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, nil, nil, fmt.Errorf("config %s: %w", path, err)
	}
	flows, _ := raw["flows"].(map[string]any)
	var body map[string]any
	for k, v := range flows {
		if k == name {
			body, _ = v.(map[string]any)
		}
	}
	if body == nil {
		body = map[string]any{}
	}
	prefix := regexp.QuoteMeta(drillreport.TopicPrefix) + ".*"
	body["topics"] = []string{prefix}
	body["topics_exclude"] = []string{}
	body["groups"] = []string{prefix}
	body["groups_exclude"] = []string{}
	body["enabled"] = true
	// Schema sync, where the flow has it, touches only the drill's own
	// subjects (TopicNameStrategy: "<drill topic>-value").
	sch, _ := body["schemas"].(map[string]any)
	if sch == nil {
		sch = map[string]any{}
	}
	sch["subjects"] = []string{prefix}
	sch["subjects_exclude"] = []string{}
	body["schemas"] = sch
	raw["flows"] = map[string]any{name: body}
	raw["http"] = map[string]any{"listen": "127.0.0.1:0"}
	// The drill's own replicator has no business exporting drill reports.
	delete(raw, "drill")
	delete(raw, "cutover")
	if cutoverCommand != "" {
		raw["cutover"] = map[string]any{"command": cutoverCommand}
	}
	out, err := yaml.Marshal(raw)
	if err != nil {
		return nil, nil, nil, err
	}
	cfg, err := config.Parse(path, out)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("drill config derived from %s: %w", path, err)
	}
	fs, err := cfg.SelectFlows([]string{name})
	if err != nil {
		return nil, nil, nil, err
	}
	return cfg, fs[0], out, nil
}
