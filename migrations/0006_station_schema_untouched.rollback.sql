-- Nothing to undo: 0006 only dropped a function no trigger used.
select 1;
