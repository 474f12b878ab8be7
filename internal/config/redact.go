package config

// Redacted returns a copy of the config that is safe to print or log:
// secret values are replaced by "<redacted>". There are no secret fields
// yet; commands that print a config (godwit config check) print
// c.Redacted(), so a secret field added later only needs redacting here.
func (c *Config) Redacted() *Config {
	cp := *c
	if c.Clusters != nil {
		cp.Clusters = make(map[string]*Cluster, len(c.Clusters))
		for k, v := range c.Clusters {
			if v != nil {
				cl := *v
				v = &cl
			}
			cp.Clusters[k] = v
		}
	}
	return &cp
}
