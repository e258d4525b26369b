module m
go 1.x
