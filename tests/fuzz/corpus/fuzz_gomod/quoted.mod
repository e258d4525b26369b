module "example.com/q" // c
go 1.21
retract [v1.0.0, v1.0.5]
replace (
	a => ../a
)
