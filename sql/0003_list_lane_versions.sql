-- A version number per list-write lane (issue "Phone numbers, lists…": list-import speed).
--
-- Every transaction that writes the lists bumps the version of the lane it holds the lock of
-- (`ListsRepository`: a batch its own lane, a removal every lane), in the same transaction. A large
-- import that has read the lists into a filter in memory (to skip the primary-key probes of numbers
-- that are certainly on no list) trusts the filter for a batch only while the lane's version is the
-- one it expects — i.e. nobody else wrote in that lane since it read the lists; otherwise it probes
-- as usual. Rows for more lanes than the code uses (2) so that a change of lane count needs no migration.
CREATE TABLE list_lane_versions (
  lane    integer PRIMARY KEY,
  version bigint NOT NULL DEFAULT 0
);
INSERT INTO list_lane_versions (lane) SELECT generate_series(0, 15);
