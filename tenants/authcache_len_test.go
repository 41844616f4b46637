package tenants

func (c *authCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}

func (n *negativeCache) len() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.expires)
}
