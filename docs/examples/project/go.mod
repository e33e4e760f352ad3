module example.com/proj

go 1.21

require (
	github.com/gin-gonic/gin v1.9.0
	golang.org/x/net v0.17.0
)
