package sqlite

// ListID implements connector.ListIdentifier: the elements of a list (a child table) are
// identified by the list's `id` column.
func (c *conn) ListID(entity, path string) string {
	ce := c.sys.Entity(entity)
	if ce == nil {
		return ""
	}
	for _, l := range Lists(ce) {
		if l.Name == path {
			return l.ID
		}
	}
	return ""
}
