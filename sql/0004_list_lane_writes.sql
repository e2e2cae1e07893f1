-- What other writers listed while a large list write was running (issue "Phone numbers, lists…").
--
-- A large write (ListsRepository's sink) keeps a filter of the listed numbers in memory and registers
-- as a reader of the lanes (a shared session-level advisory lock per lane). While a reader is
-- registered, every list-writing transaction logs here, under its lane's lock, the numbers it wrote
-- with the lane version it bumped (sql/0003); a reader that finds versions it did not write adds
-- their numbers to its filter and goes on trusting it, where it would otherwise probe every number
-- of that lane for the rest of the write. A missing version makes the reader distrust the lane.
-- Rows older than 1,000 versions of their lane are deleted by the writers that log.
CREATE TABLE list_lane_writes (
  lane    integer NOT NULL,
  version bigint  NOT NULL,
  phones  text[]  NOT NULL,
  PRIMARY KEY (lane, version)
);
