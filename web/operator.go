package web

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/pushgate/pushgate/tenants"
)

// operator runs page for a signed-in operator. A visitor without a session
// is sent to sign in; a workspace owner gets 404, as for any page not theirs.
func (dash *Dashboard) operator(page func(w http.ResponseWriter, r *http.Request, s *tenants.Session)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := sessionFrom(r.Context())
		switch {
		case s == nil:
			http.Redirect(w, r, "/signin", http.StatusSeeOther)
		case s.Kind != tenants.SessionOperator:
			dash.render(w, r, http.StatusNotFound, "error", view{Title: "Not found", Error: "There is no such page."})
		default:
			page(w, r, s)
		}
	})
}

type operatorListRow struct {
	tenants.WorkspaceListing
	Limit     int64
	Unlimited bool
	Percent   int64
}

type operatorData struct {
	Query tenants.WorkspaceQuery
	Rows  []operatorListRow
	Page  *tenants.WorkspacePage
	// NextURL, PrevURL and FirstURL keep the search and filters; empty when there is no such page.
	NextURL, PrevURL, FirstURL string
	Filtered                   bool
	Plans                      []tenants.Plan
	Sorts                      []sortOption
}

type sortOption struct {
	Value tenants.WorkspaceSort
	Label string
}

var sortOptions = []sortOption{{tenants.SortByUsage, "Most used this month"}, {tenants.SortNewest, "Newest"}, {tenants.SortByName, "Name"}}

var allPlans = []tenants.Plan{tenants.PlanFree, tenants.PlanPro, tenants.PlanEnterprise}

// queryOf reads the list's search, filters and page from the URL.
func queryOf(v url.Values) (tenants.WorkspaceQuery, error) {
	q := tenants.WorkspaceQuery{
		Search: v.Get("q"), Plan: tenants.Plan(v.Get("plan")), Status: tenants.Status(v.Get("status")),
		NearLimit: v.Get("near_limit") != "", TermsPending: v.Get("terms_pending") != "",
		Sort: tenants.WorkspaceSort(v.Get("sort")), After: v.Get("after"), Before: v.Get("before"),
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return q, tenants.FieldError("limit", "must be a number of rows, got %q", s)
		}
		q.Limit = n
	}
	return q, q.Validate()
}

// listURL is the list's address with q's search and filters and a cursor
// (cursorKey "after" or "before"; an empty cursor is the first page).
func listURL(q tenants.WorkspaceQuery, cursorKey, cursor string) string {
	v := url.Values{}
	set := func(k, val string) {
		if val != "" {
			v.Set(k, val)
		}
	}
	set("q", q.Search)
	set("plan", string(q.Plan))
	set("status", string(q.Status))
	if q.NearLimit {
		v.Set("near_limit", "1")
	}
	if q.TermsPending {
		v.Set("terms_pending", "1")
	}
	if q.Sort != tenants.SortByUsage {
		set("sort", string(q.Sort))
	}
	set(cursorKey, cursor)
	if len(v) == 0 {
		return "/operator"
	}
	return "/operator?" + v.Encode()
}

// Operator lists this region's workspaces a page at a time, searched,
// filtered and sorted in the database.
func (dash *Dashboard) Operator() http.Handler {
	return dash.operator(func(w http.ResponseWriter, r *http.Request, _ *tenants.Session) {
		q, err := queryOf(r.URL.Query())
		data := operatorData{Query: q, Plans: allPlans, Sorts: sortOptions}
		v := view{Title: "Workspaces", Nav: "operator", Data: &data}
		if err != nil {
			data.Query.Sort = tenants.SortByUsage
			dash.fail(w, r, "operator", v, err)
			return
		}
		page, err := dash.d.Tenants.FindWorkspaces(r.Context(), q)
		if err != nil {
			dash.fail(w, r, "operator", v, err)
			return
		}
		data.Page = page
		period := tenants.PeriodOf(dash.d.Now())
		for _, l := range page.Workspaces {
			row := operatorListRow{WorkspaceListing: l, Limit: l.LimitIn(period)}
			row.Unlimited = row.Limit == tenants.Unlimited
			if !row.Unlimited {
				row.Percent = l.Used * 100 / max(row.Limit, 1)
			}
			data.Rows = append(data.Rows, row)
		}
		if page.Next != "" {
			data.NextURL = listURL(q, "after", page.Next)
		}
		if page.Prev != "" {
			data.PrevURL = listURL(q, "before", page.Prev)
		}
		if q.After != "" || q.Before != "" {
			data.FirstURL = listURL(q, "", "")
		}
		data.Filtered = q.Search != "" || q.Plan != "" || q.Status != "" || q.NearLimit || q.TermsPending
		dash.render(w, r, http.StatusOK, "operator", v)
	})
}

// trimmed bounds a form value before it is shown back on a page.
func trimmed(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return s[:n]
	}
	return s
}
